"""The app factory, health probes, the OpenAPI document and error bodies."""

from __future__ import annotations

from deploy.processes import free_port
from gateway.app import create_app
from gateway.settings import from_env


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json["status"] == "ok"


def test_readyz_when_stores_are_up(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"] == {"mongodb": "ok", "redis": "ok"}


def test_readyz_warns_when_a_proxy_forwards_and_no_hop_is_trusted(client):
    assert client.get("/readyz").json["warnings"] == []
    client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    resp = client.get("/readyz")
    assert resp.status_code == 200  # still ready: a setting to fix, not an outage
    [warning] = resp.json["warnings"]
    assert "SAFEGRID_PROXY_HOPS" in warning


def test_readyz_does_not_warn_when_the_proxy_hop_is_trusted(settings):
    behind = create_app(settings.with_(proxy_hops=1)).test_client()
    behind.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert behind.get("/readyz").json["warnings"] == []


def test_readyz_is_503_when_redis_is_down(settings):
    down = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    resp = create_app(down).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"]["redis"].startswith("unreachable")
    assert resp.json["checks"]["mongodb"] == "ok"


def test_openapi_documents_every_operation(client):
    spec = client.get("/openapi.json").json
    paths = spec["paths"]
    assert "post" in paths["/api/v1/reports"]
    assert "get" in paths["/api/v1/reports/{code}"]
    assert "get" in paths["/api/v1/stations/{code}/dispatches"]
    assert "post" in paths["/api/v1/dispatches/{dispatch_id}/acknowledge"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_page_is_served(client):
    assert client.get("/docs").headers["Location"].endswith("/swagger")
    resp = client.get("/swagger")
    assert resp.status_code == 200
    assert b"swagger-ui" in resp.data.lower()


def test_unknown_path_is_json_404(client):
    resp = client.get("/api/v1/nowhere")
    assert resp.status_code == 404
    assert resp.json["code"] == 404


def test_settings_from_env():
    s = from_env({"MONGODB_URI": "mongodb://db/x", "REDIS_URL": "redis://r/1",
                  "SAFEGRID_NEAREST_CELL_MAX_M": "500", "SAFEGRID_TESTING": "yes"})
    assert (s.mongodb_uri, s.redis_url, s.nearest_cell_max_m, s.testing) == (
        "mongodb://db/x", "redis://r/1", 500.0, True)


def test_settings_from_env_rejects_bad_numbers():
    import pytest

    with pytest.raises(ValueError, match="SAFEGRID_SWEEP_AFTER_S"):
        from_env({"SAFEGRID_SWEEP_AFTER_S": "soon"})
