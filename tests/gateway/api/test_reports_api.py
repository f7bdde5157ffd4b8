"""Filing reports from the app: storage, idempotency, bad input, scope."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rq import SimpleWorker

from gateway import startup
from gateway.app import create_app
from gateway.delivery import queues
from gateway.extensions import redis_store
from gateway.records.reports import Report
from gateway.sample import cell_code
from geo.datum import from_wgs84
from grid.documents import Dispatch, GridCell
from sms import replies
from tests.helpers import auth, cell_centre, token_of


class BurstWorker(SimpleWorker):
    """RQ's SimpleWorker for a burst run inside the test, without its command channel.

    A burst here needs no `rq` commands (suspend, kill-horse) over pubsub, and with
    RQ 3.0 and redis-py 8.2 the channel's teardown can wait out its 60 s poll: the
    unsubscribe clears the subscription event the polling thread then waits on.
    """

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def run_jobs() -> None:
    conn = redis_store.conn
    BurstWorker([queues.queue(n) for n in queues.WORKER_QUEUES], connection=conn).work(burst=True)


@pytest.fixture
def reporter(county):
    return auth(token_of(county, "reporter 张秀英"))


def post(client, headers, **body):
    body.setdefault("client_id", "app-0001-abcdef")
    body.setdefault("category", "CHILD")
    return client.post("/api/v1/reports", json=body, headers=headers)


def test_gps_report_is_stored_then_routed_to_the_cells_station(client, county, reporter):
    cell = GridCell.objects(code=cell_code(2, 1, 3)).first()
    lat, lon = cell_centre(cell.ring)
    resp = post(client, reporter, location={"lat": lat, "lon": lon},
                details="穿红衣男孩被抱上面包车")
    assert resp.status_code == 201, resp.json
    code = resp.json["code"]
    assert resp.json["status"] == "received"
    assert Report.objects(code=code).first().status == "received"
    run_jobs()
    report = Report.objects(code=code).first()
    assert report.status == "routed"
    assert report.cell_code == cell.code
    assert report.station_code == "530627-PJ"
    dispatches = Dispatch.objects(report_id=report.id).order_by("station_code")
    # The cell's station, and the county criminal-investigation desk for a child case.
    assert [d.station_code for d in dispatches] == ["530627-PJ", "530627-XJ"]
    assert {d.priority for d in dispatches} == {"critical"}


@pytest.mark.parametrize("spelling", ["gcj02", "GCJ02", "GCJ-02", "gcj_02"])
def test_gcj02_point_is_converted_before_placing(client, county, reporter, spelling):
    cell = GridCell.objects(code=cell_code(0, 2, 0)).first()
    lat, lon = cell_centre(cell.ring)
    g_lat, g_lon = from_wgs84(lat, lon, "gcj02")
    resp = post(client, reporter, location={"lat": g_lat, "lon": g_lon, "datum": spelling})
    assert resp.status_code == 201
    assert abs(resp.json["location"]["lat"] - lat) < 1e-4
    run_jobs()
    assert Report.objects(code=resp.json["code"]).first().cell_code == cell.code


def test_same_client_id_twice_gives_one_report_and_one_dispatch(client, county, reporter):
    first = post(client, reporter, grid_code=cell_code(1, 0, 0))
    second = post(client, reporter, grid_code=cell_code(1, 0, 0))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["code"] == second.json["code"]
    run_jobs()
    third = post(client, reporter, grid_code=cell_code(1, 0, 0))
    assert third.status_code == 200
    run_jobs()
    assert Report.objects.count() == 1
    assert Dispatch.objects(station_code="530627-NT").count() == 1


def test_route_job_twice_makes_one_dispatch(client, county, reporter):
    from gateway.delivery.routing import route

    resp = post(client, reporter, grid_code=cell_code(1, 2, 1))
    report = Report.objects(code=resp.json["code"]).first()
    assert route(str(report.id)) == "530627-NT"
    assert route(str(report.id)) == "530627-NT"
    assert Dispatch.objects(report_id=report.id, station_code="530627-NT").count() == 1
    assert Dispatch.objects(report_id=report.id).count() == 2  # + the county desk


def test_grid_code_with_hyphens_is_accepted(client, county, reporter):
    code = cell_code(0, 0, 1)
    resp = post(client, reporter, grid_code=f"{code[:6]}-{code[6:9]}-{code[9:]}")
    assert resp.status_code == 201, resp.json
    assert resp.json["location"]["grid_code"] == code


def test_no_location_uses_the_reporters_home_cell(client, county, reporter):
    resp = post(client, reporter)
    assert resp.status_code == 201
    run_jobs()
    report = Report.objects(code=resp.json["code"]).first()
    assert report.cell_code == cell_code(0, 0, 0)
    assert report.placed_by == "reporter_home_cell"


def test_point_far_outside_the_grid_falls_back_to_home_cell_flagged(client, county, reporter):
    resp = post(client, reporter, location={"lat": 27.9, "lon": 105.5})
    run_jobs()
    report = Report.objects(code=resp.json["code"]).first()
    assert report.status == "routed"
    # The reporter's home cell is used before the county desk.
    assert report.placed_by == "reporter_home_cell"
    assert "gps_outside_grid" in report.flags
    # ...and the reporter is told, where they follow their report.
    mine = client.get(f"/api/v1/reports/{report.code}", headers=reporter).json
    assert mine["location_note"] == replies.LOCATION_NOTES["gps_outside_grid"]


def test_a_report_placed_as_given_has_no_location_note(client, county, reporter):
    resp = post(client, reporter, grid_code=cell_code(1, 0, 0))
    run_jobs()
    assert client.get(f"/api/v1/reports/{resp.json['code']}",
                      headers=reporter).json["location_note"] is None


def test_reporter_reads_own_report_but_not_anothers(client, county, reporter):
    code = post(client, reporter).json["code"]
    mine = client.get(f"/api/v1/reports/{code.lower()}", headers=reporter)
    assert mine.status_code == 200
    assert mine.json["code"] == code
    other = auth(token_of(county, "reporter 李国强"))
    assert client.get(f"/api/v1/reports/{code}", headers=other).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "NOPE"}, "category"),
        ({"category": 7}, "category"),
        ({"client_id": "x"}, "client_id"),
        ({"location": {"lat": 91, "lon": 104}}, "location"),
        ({"location": {"lat": 27, "lon": 181}}, "location"),
        ({"location": {"lat": "north", "lon": 104}}, "location"),
        ({"location": {"lat": 27, "lon": 104, "datum": "tokyo"}}, "location"),
        ({"details": "拐" * 4001}, "details"),
        ({"grid_code": "12ab"}, "grid_code"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_422_naming_the_field(client, county, reporter, body, field):
    resp = post(client, reporter, **body)
    assert resp.status_code == 422
    assert field in str(resp.json["errors"])
    assert Report.objects.count() == 0


def test_missing_client_id_is_422(client, county, reporter):
    resp = client.post("/api/v1/reports", json={"category": "CHILD"}, headers=reporter)
    assert resp.status_code == 422
    assert "client_id" in resp.json["errors"]["json"]


def test_unknown_grid_code_is_422(client, county, reporter):
    resp = post(client, reporter, grid_code="530627999999999")
    assert resp.status_code == 422
    assert "unknown grid code" in resp.json["message"]
    assert Report.objects.count() == 0


def test_malformed_json_is_400(client, county, reporter):
    resp = client.post("/api/v1/reports", data="{not json",
                       headers={**reporter, "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.is_json


def test_wrong_content_type_is_415(client, county, reporter):
    resp = client.post("/api/v1/reports", data="category=CHILD",
                       headers={**reporter, "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415
    assert "application/json" in resp.json["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sg_nope"}, {"Authorization": "Basic abc"},
     {"Authorization": "Bearer "}],
)
def test_missing_or_wrong_token_is_401(client, county, headers):
    resp = post(client, headers)
    assert resp.status_code == 401
    assert resp.json["message"]
    assert "Bearer" in resp.headers["WWW-Authenticate"]


def test_officer_cannot_file_a_report(client, county):
    resp = post(client, auth(token_of(county, "officer 乌峰派出所")))
    assert resp.status_code == 403


def test_times_are_written_as_utc(client, county, reporter):
    resp = post(client, reporter)
    assert resp.json["created_at"].endswith("+00:00")


def test_rules_table_decides_priority_and_extra_recipients(client, county, reporter):
    codes = {}
    for category in ("ABUSE", "WOMAN", "ONLINE"):
        resp = post(client, reporter, client_id=f"rules-{category}-0001", category=category,
                    grid_code=cell_code(1, 1, 1))
        codes[category] = resp.json["code"]
    run_jobs()
    got = {c: sorted((d.station_code, d.priority) for d in Dispatch.objects(report_code=code))
           for c, code in codes.items()}
    assert got == {
        "ABUSE": [("530627-NT", "critical"), ("530627-XJ", "critical")],
        "WOMAN": [("530627-NT", "urgent")],
        "ONLINE": [("530627-NT", "routine")],
    }


def test_a_village_named_in_the_text_places_the_report(client, county, reporter):
    # No GPS, no grid code: 泼机镇's 黑树村 named in the details, far from the reporter's home.
    resp = post(client, reporter, category="WOMAN", details="黑树村有户人家买来一个外地媳妇")
    run_jobs()
    report = Report.objects(code=resp.json["code"]).first()
    assert report.placed_by == "gazetteer"
    assert report.station_code == "530627-PJ"
    assert report.cell_code.startswith("530627101003")  # 黑树村's cells
    assert report.location.label == "黑树村"


def test_a_county_seat_named_in_the_text_is_too_coarse_to_pick_a_cell(client, county,
                                                                      reporter):
    resp = post(client, reporter, category="WOMAN", details="镇雄县城有人贩卖妇女")
    run_jobs()
    report = Report.objects(code=resp.json["code"]).first()
    assert report.placed_by == "reporter_home_cell"


def test_the_geocoder_places_what_the_gazetteer_cannot(app, client, county, reporter):
    import json

    from tests.fakes import recording_server

    cell = GridCell.objects(code=cell_code(1, 2, 1)).first()
    lat, lon = cell_centre(cell.ring)
    answer = [{"lat": str(lat), "lon": str(lon), "display_name": "镇雄客运站",
               "boundingbox": [str(lat - 0.001), str(lat + 0.001), str(lon - 0.001),
                               str(lon + 0.001)], "class": "amenity", "type": "bus_station"}]
    with recording_server(status=200, body=json.dumps(answer)) as nominatim:
        startup.configure(app.config["SAFEGRID"].with_(geocoder_url=nominatim.url,
                                                       geocoder_min_delay_s=0.01))
        resp = post(client, reporter, category="WOMAN",
                    details="客运站候车室有人拉着哭泣女子 电话13912345678")
        run_jobs()
    report = Report.objects(code=resp.json["code"]).first()
    assert (report.placed_by, report.cell_code) == ("geocoder", cell.code)
    [request] = nominatim.requests
    assert "13912345678" not in request.params["q"]  # phone numbers never leave SafeGrid


def test_details_and_names_are_encrypted_at_rest(client, county, reporter):
    from gateway.records.people import Reporter

    secret = "嫌疑人王某某，电话13912345678"
    resp = post(client, reporter, details=secret)
    assert resp.json["details"] == secret  # the reporter reads it back in clear
    raw = Report._get_collection().find_one({"code": resp.json["code"]})
    assert raw["details"].startswith("sg1:")
    assert "王某某" not in str(raw)
    assert Report.objects(code=resp.json["code"]).first().details == secret
    again = post(client, reporter)  # the same client_id: read back from the store
    assert again.json["details"] == secret
    stored_reporter = Reporter._get_collection().find_one(
        {"_id": Reporter.by_phone("+8613800001001").first().id})
    assert stored_reporter["name"].startswith("sg1:")
    assert stored_reporter["phone"].startswith("sg1:")
    assert "13800001001" not in str(stored_reporter)


def test_the_phones_accuracy_is_kept_as_the_reports_precision(client, county, reporter):
    cell = GridCell.objects(code=cell_code(2, 1, 3)).first()
    lat, lon = cell_centre(cell.ring)
    resp = post(client, reporter, location={"lat": lat, "lon": lon, "accuracy_m": 12.5})
    assert resp.status_code == 201, resp.json
    assert Report.objects(code=resp.json["code"]).first().location.precision_m == 12.5


@pytest.mark.parametrize("accuracy", [-1, "far", float("inf")])
def test_a_bad_accuracy_is_a_422(client, county, reporter, accuracy):
    resp = client.post("/api/v1/reports", headers=reporter, data=(
        '{"client_id": "app-0001-abcdef", "category": "CHILD", "location": '
        f'{{"lat": 27.4, "lon": 104.8, "accuracy_m": {accuracy!r}}}}}'.replace("inf", "1e999")
        .replace("'far'", '"far"')), content_type="application/json")
    assert resp.status_code == 422, resp.json
    assert "accuracy_m" in resp.json["errors"]["json"]["location"]


def test_a_fix_vaguer_than_its_cell_yields_to_the_grid_code_and_the_reporter_is_told(
        client, county, reporter):
    cell = GridCell.objects(code=cell_code(2, 1, 3)).first()
    lat, lon = cell_centre(cell.ring)
    named = cell_code(0, 0, 1)
    resp = post(client, reporter, location={"lat": lat, "lon": lon, "accuracy_m": 20_000},
                grid_code=named)
    run_jobs()
    report = Report.objects(code=resp.json["code"]).first()
    assert (report.cell_code, report.placed_by) == (named, "grid_code")
    assert "gps_imprecise_grid_code" in report.flags
    mine = client.get(f"/api/v1/reports/{report.code}", headers=reporter).json
    assert mine["location_note"] == replies.LOCATION_NOTES["gps_imprecise_grid_code"]
    # The same fix, precise, still wins over the grid code.
    precise = post(client, reporter, client_id="app-0002-abcdef", grid_code=named,
                   location={"lat": lat, "lon": lon, "accuracy_m": 15})
    run_jobs()
    assert Report.objects(code=precise.json["code"]).first().cell_code == cell.code


def test_past_the_hourly_budget_a_report_is_stored_and_the_app_asked_to_slow_down(
        settings, county, reporter):
    client = create_app(settings.with_(reports_per_reporter_hour=3)).test_client()
    # Early in a clock hour, so the five fall in one hour's count.
    with time_machine.travel(dt.datetime(2026, 12, 5, 12, 0, 5, tzinfo=dt.UTC), tick=True):
        answers = [post(client, reporter, client_id=f"app-budget-{n:04d}") for n in range(5)]
    assert [a.status_code for a in answers] == [201] * 5
    assert [a.json.get("slow_down", False) for a in answers] == [False] * 3 + [True] * 2
    assert "Retry-After" not in answers[2].headers
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 3600
    # Nothing is dropped: every report is stored and routed.
    run_jobs()
    codes = [a.json["code"] for a in answers]
    assert Report.objects(code__in=codes, status="routed").count() == 5
    # A retry of one of them answers 200 and counts nothing.
    again = post(client, reporter, client_id="app-budget-0000")
    assert again.status_code == 200
    assert "slow_down" not in again.json
