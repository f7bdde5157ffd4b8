"""The `safegrid` command line against the test's stores."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway import audit
from gateway.cli import main
from gateway.crypto import Keyring
from gateway.documents import Report


@pytest.fixture
def run(settings, monkeypatch, app):
    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", settings.data_keys)

    def run(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def test_keys_generate_makes_a_usable_key(run):
    result = run("keys", "generate", "--kid", "k9")
    kid, _, _ = result.output.strip().partition(":")
    assert kid == "k9"
    ring = Keyring.from_env_value(result.output.strip())
    assert ring.decrypt(ring.encrypt("网格", context="x"), context="x") == "网格"


def test_audit_verify_passes_then_finds_tampering(run):
    for i in range(3):
        audit.append("officer:1", "dispatch.acknowledge", f"dispatch:{i}", {"to": "acknowledged"})
    ok = run("audit", "verify")
    assert ok.exit_code == 0, ok.output
    head = audit.AuditEntry.objects.order_by("-seq").first()
    assert head.hash in ok.output
    audit.AuditEntry._get_collection().update_one({"seq": 2}, {"$set": {"actor": "officer:2"}})
    bad = run("audit", "verify")
    assert bad.exit_code == 1
    assert "seq 2" in bad.output


def test_reencrypt_moves_data_to_a_new_key(run, client, county, monkeypatch, settings):
    from tests.helpers import auth, token_of

    client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 张秀英")),
                json={"client_id": "rekey-0001", "category": "OTHER", "details": "旧钥匙加密"})
    new_keys = f"k2:{Keyring.generate_key()},{settings.data_keys}"
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", new_keys)
    first = run("reencrypt")
    assert first.exit_code == 0, first.output
    assert run("reencrypt").output.strip().endswith("re-encrypted 0 values")
    raw = Report._get_collection().find_one({"client_id": "rekey-0001"})
    assert raw["details"].startswith("sg1:k2:")
    ring = Keyring.from_env_value(new_keys)
    assert ring.decrypt(raw["details"], context="report.details") == "旧钥匙加密"
