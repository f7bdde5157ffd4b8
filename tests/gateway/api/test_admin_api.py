"""The admin API: units, reporters, officers and stations kept by a county's administrators."""

from __future__ import annotations

import json

import pytest

from gateway.access.tokens import issue_token
from gateway.privacy import audit
from gateway.records.people import Officer, Reporter
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Station
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of

NEW_PHONE = "+8613912340001"


@pytest.fixture
def admin(county):
    return auth(token_of(county, "admin"))


@pytest.fixture
def other_admin(county):
    return auth(issue_token("admin", county_code="530602", label="昭阳区管理员"))


def teacher_body(**more):
    return {"name": "马老师", "phone": "139 1234 0001", "role": "teacher",
            "unit": "镇雄县第一小学", "language": "ii", **more}


def codes(resp) -> dict[str, str]:
    return {p["field"]: p["code"] for p in resp.json["errors"]["fields"]}


def no_clear_values_in_audit(*values: str) -> None:
    text = json.dumps([e.to_mongo().to_dict() for e in audit.AuditEntry.objects],
                      default=str, ensure_ascii=False)
    for value in values:
        assert value not in text


def test_an_admin_enrols_a_reporter_and_the_change_is_audited_without_clear_values(
        client, admin):
    resp = client.post("/api/v1/reporters", headers=admin, json=teacher_body())
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert (body["name"], body["phone"], body["unit"], body["language"], body["county_code"],
            body["active"]) == ("马老师", NEW_PHONE, "530627-U03", "ii", "530627", True)
    [entry] = audit.AuditEntry.objects(action="reporter.enrol")
    assert entry.actor == "admin:sample county administrator"
    assert entry.details["before"] is None
    assert len(entry.details["after"]) == 64
    assert "phone" in entry.details["changed"]
    no_clear_values_in_audit("马老师", NEW_PHONE, "13912340001")
    stored = Reporter._get_collection().find_one({"role": "teacher", "language": "ii"})
    assert "马老师" not in json.dumps(stored, default=str, ensure_ascii=False)  # sealed


def test_bad_fields_are_named_each_with_a_roster_code(client, admin):
    resp = client.post("/api/v1/reporters", headers=admin, json={
        "name": "长" * 101, "phone": "0871-65123456", "role": "janitor", "unit": "不存在的单位",
        "home_cell": "530627999999999", "language": "fr"})
    assert resp.status_code == 422
    assert codes(resp) == {"name": "too_long", "phone": "not_mobile", "role": "unknown_role",
                           "unit": "unknown_unit", "home_cell": "unknown_cell",
                           "language": "unknown_language"}
    assert "0871" not in resp.get_data(as_text=True)
    blank = client.post("/api/v1/reporters", headers=admin, json=teacher_body(
        name="  ", phone="12345", role="grid_worker"))
    assert codes(blank) == {"name": "required", "phone": "invalid_phone",
                            "home_cell": "required"}


@pytest.mark.parametrize(("phone", "holder"), [("+8613800001002", "reporter"),
                                               ("+8613800003001", "officer")])
def test_a_phone_held_by_another_account_is_phone_taken(client, admin, phone, holder):
    resp = client.post("/api/v1/reporters", headers=admin, json=teacher_body(phone=phone))
    assert resp.status_code == 422
    assert codes(resp) == {"phone": "phone_taken"}
    assert holder in resp.json["errors"]["fields"][0]["message"]
    officer = client.post("/api/v1/officers", headers=admin, json={
        "name": "新民警", "phone": "+8613800001003", "duty_role": "officer",
        "station_code": "530627-NT"})
    assert codes(officer) == {"phone": "phone_taken"}  # a reporter's phone


def test_a_phone_that_only_sent_public_tips_becomes_the_reporter(client, admin):
    tipster = Reporter.by_phone("+8613800001011").get()  # 徐磊, public
    resp = client.post("/api/v1/reporters", headers=admin, json=teacher_body(
        phone="+8613800001011", role="other"))
    assert resp.status_code == 201
    assert resp.json["id"] == str(tipster.id)


def test_listing_filters_and_pages_and_is_audited(client, admin):
    resp = client.get("/api/v1/reporters?role=teacher&page_size=1", headers=admin)
    assert resp.status_code == 200
    assert json.loads(resp.headers["X-Pagination"])["total"] == 2
    assert [r["role"] for r in resp.json] == ["teacher"]
    every = client.get("/api/v1/reporters?page_size=100", headers=admin).json
    assert "public" not in {r["role"] for r in every}
    assert {r["unit"] for r in client.get("/api/v1/reporters?unit=530627-U01",
                                           headers=admin).json} == {"530627-U01"}
    assert audit.AuditEntry.objects(action="reporter.list").count() == 3
    assert client.get("/api/v1/reporters?role=public", headers=admin).status_code == 422


def test_an_admin_of_another_county_reaches_nothing_here(client, admin, other_admin):
    someone = Reporter.by_phone("+8613800001003").get()
    assert client.get(f"/api/v1/reporters/{someone.id}", headers=other_admin).status_code == 404
    assert client.post(f"/api/v1/reporters/{someone.id}/deactivate",
                       headers=other_admin).status_code == 404
    assert client.get("/api/v1/reporters?county=530627", headers=other_admin).status_code == 403
    assert client.get("/api/v1/reporters", headers=other_admin).json == []
    assert client.post("/api/v1/reporters", headers=other_admin,
                       json=teacher_body(county_code="530627")).status_code == 403
    assert client.get("/api/v1/units/530627-U01", headers=other_admin).status_code == 404
    assert client.get("/api/v1/stations/530627-WF", headers=other_admin).status_code == 404
    platform = auth(issue_token("admin", label="平台运维"))  # no county: every county
    assert client.get(f"/api/v1/reporters/{someone.id}", headers=platform).status_code == 200


def test_reading_one_reporter_shows_name_and_phone_and_is_audited(client, admin):
    someone = Reporter.by_phone("+8613800001003").get()
    resp = client.get(f"/api/v1/reporters/{someone.id}", headers=admin)
    assert (resp.json["name"], resp.json["phone"]) == ("王丽", "+8613800001003")
    assert audit.AuditEntry.objects(action="reporter.read", subject=f"reporter:{someone.id}")
    assert client.get("/api/v1/reporters/not-an-id", headers=admin).status_code == 404


def test_patch_changes_fields_with_digests(client, admin):
    someone = Reporter.by_phone("+8613800001003").get()
    resp = client.patch(f"/api/v1/reporters/{someone.id}", headers=admin,
                        json={"language": "bo", "unit": "530627-U04"})
    assert resp.status_code == 200
    assert (resp.json["language"], resp.json["unit"]) == ("bo", "530627-U04")
    [entry] = audit.AuditEntry.objects(action="reporter.change")
    assert entry.details["changed"] == ["language", "unit"]
    assert entry.details["before"] != entry.details["after"]
    bad = client.patch(f"/api/v1/reporters/{someone.id}", headers=admin,
                       json={"phone": "+8613800001004"})
    assert codes(bad) == {"phone": "phone_taken"}
    assert client.patch(f"/api/v1/reporters/{someone.id}", headers=admin,
                        json={"colour": "red"}).status_code == 422


def test_deactivating_revokes_tokens_keeps_reports_and_blocks_login(client, county, admin):
    token = token_of(county, "reporter 张秀英")
    filed = client.post("/api/v1/reports", headers=auth(token), json={
        "client_id": "before-deactivation", "category": "OTHER"})
    assert filed.status_code == 201
    someone = Reporter.by_phone("+8613800001001").get()
    resp = client.post(f"/api/v1/reporters/{someone.id}/deactivate", headers=admin)
    assert (resp.status_code, resp.json["active"]) == (200, False)
    assert client.get(f"/api/v1/reports/{filed.json['code']}",
                      headers=auth(token)).status_code == 401
    assert Report.objects(code=filed.json["code"]).get().reporter_id == someone.id
    login = client.post("/api/v1/auth/login", json={"phone": "+8613800001001",
                                                    "password": county.password})
    assert login.status_code == 401
    [entry] = audit.AuditEntry.objects(action="reporter.deactivate")
    assert entry.details["tokens_revoked"] >= 1
    assert entry.details["changed"] == ["active"]
    again = client.post(f"/api/v1/reporters/{someone.id}/reactivate", headers=admin)
    assert again.json["active"] is True
    assert client.post("/api/v1/auth/login", json={
        "phone": "+8613800001001", "password": county.password}).status_code == 200


def test_erasure_wipes_identity_keeps_reports_with_the_role_and_frees_the_phone(
        client, county, admin):
    token = token_of(county, "reporter 王丽")
    filed = client.post("/api/v1/reports", headers=auth(token), json={
        "client_id": "before-erasure-1", "category": "CHILD",
        "grid_code": cell_code(0, 0, 0)})
    run_jobs()
    someone = Reporter.by_phone("+8613800001003").get()
    resp = client.post(f"/api/v1/reporters/{someone.id}/erase", headers=admin)
    assert resp.status_code == 200
    assert (resp.json["name"], resp.json["phone"], resp.json["erased"],
            resp.json["role"]) == (None, None, True, "teacher")
    raw = Reporter._get_collection().find_one({"_id": someone.id})
    assert "phone" not in raw
    assert "name" not in raw
    assert "password_hash" not in raw
    assert Report.objects(code=filed.json["code"]).get().reporter_id == someone.id
    officer = auth(token_of(county, "officer 乌峰派出所"))
    dispatch_id = client.get("/api/v1/stations/530627-WF/dispatches", headers=officer).json[0]["id"]
    [shown] = client.get(f"/api/v1/dispatches/{dispatch_id}/reports", headers=officer).json
    assert shown["reporter_role"] == "teacher"
    assert client.post(f"/api/v1/reporters/{someone.id}/reactivate",
                       headers=admin).status_code == 409
    assert client.patch(f"/api/v1/reporters/{someone.id}", headers=admin,
                        json={"language": "en"}).status_code == 409
    [entry] = audit.AuditEntry.objects(action="reporter.erase")
    assert "name" in entry.details["changed"]
    assert "phone" in entry.details["changed"]
    no_clear_values_in_audit("王丽", "+8613800001003")
    again = client.post("/api/v1/reporters", headers=admin,
                        json=teacher_body(phone="+8613800001003"))
    assert again.status_code == 201
    assert again.json["id"] != str(someone.id)


def test_erasure_waits_for_a_legal_hold(client, county, admin):
    filed = client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 王丽")),
                        json={"client_id": "held-report-1", "category": "OTHER"})
    Report.objects(code=filed.json["code"]).update_one(set__legal_hold=True)
    someone = Reporter.by_phone("+8613800001003").get()
    resp = client.post(f"/api/v1/reporters/{someone.id}/erase", headers=admin)
    assert resp.status_code == 409
    assert resp.json["errors"]["legal_hold"] == [filed.json["code"]]
    assert Reporter.objects(id=someone.id).get().name == "王丽"


def test_units_are_enrolled_listed_changed_and_deactivated(client, admin):
    body = {"code": "91530627MA6K000001", "name": "镇雄县第二幼儿园", "type": "kindergarten",
            "cell_code": cell_code(1, 0, 0)}
    resp = client.post("/api/v1/units", headers=admin, json=body)
    assert resp.status_code == 201
    assert resp.json["county_code"] == "530627"
    dup = client.post("/api/v1/units", headers=admin, json=body)
    assert (dup.status_code, codes(dup)) == (409, {"code": "code_taken"})
    bad = client.post("/api/v1/units", headers=admin, json={**body, "code": "X2", "type": "bank",
                                                             "cell_code": "530627999999999"})
    assert codes(bad) == {"type": "unknown_type", "cell_code": "unknown_cell"}
    listed = client.get("/api/v1/units?type=kindergarten", headers=admin)
    assert [u["code"] for u in listed.json] == [body["code"]]
    assert client.patch(f"/api/v1/units/{body['code']}", headers=admin,
                        json={"name": "第二幼儿园"}).json["name"] == "第二幼儿园"
    assert client.post(f"/api/v1/units/{body['code']}/deactivate",
                       headers=admin).json["active"] is False
    joined = client.post("/api/v1/reporters", headers=admin,
                         json=teacher_body(unit=body["code"]))
    assert codes(joined) == {"unit": "unknown_unit"}  # a deactivated unit takes no one new
    assert [e.action for e in audit.AuditEntry.objects(subject=f"unit:{body['code']}")] == [
        "unit.enrol", "unit.change", "unit.deactivate"]


def test_officers_are_listed_to_their_chief_and_supervisor_names_only(client, county, admin):
    chief = auth(token_of(county, "chief 乌峰派出所"))
    officer = auth(token_of(county, "officer 乌峰派出所"))
    supervisor = auth(token_of(county, "supervisor"))
    seen = client.get("/api/v1/officers", headers=chief)
    assert seen.status_code == 200
    assert {o["station_code"] for o in seen.json} == {"530627-WF"}
    assert {o["duty_role"] for o in seen.json} == {"chief", "duty_officer"}
    assert {o["phone"] for o in seen.json} == {None}
    assert client.get("/api/v1/officers", headers=officer).status_code == 403
    assert client.get("/api/v1/officers?station=530627-NT", headers=chief).status_code == 403
    county_wide = client.get("/api/v1/officers?page_size=50", headers=supervisor).json
    assert len(county_wide) == 6
    assert {o["phone"] for o in county_wide} == {None}
    other = Officer.objects(station_code="530627-NT").get()
    assert client.get(f"/api/v1/officers/{other.id}", headers=chief).status_code == 404
    assert client.get(f"/api/v1/officers/{other.id}", headers=admin).json["phone"] == \
        "+8613800003002"


def test_an_officer_is_enrolled_and_a_new_duty_revokes_their_tokens(client, admin):
    resp = client.post("/api/v1/officers", headers=admin, json={
        "name": "新所长", "phone": "+8613912340002", "duty_role": "chief",
        "station_code": "530627-NT"})
    assert resp.status_code == 201, resp.json
    assert (resp.json["role"], resp.json["duty_role"]) == ("officer", "chief")
    bad = client.post("/api/v1/officers", headers=admin, json={
        "name": "某", "phone": "+8613912340003", "duty_role": "sheriff"})
    assert codes(bad) == {"duty_role": "unknown_role"}
    nowhere = client.post("/api/v1/officers", headers=admin, json={
        "name": "某", "phone": "+8613912340003", "duty_role": "officer",
        "station_code": "530627-ZZ"})
    assert codes(nowhere) == {"station_code": "unknown_station"}
    token = issue_token("officer", subject_id=resp.json["id"], station_code="530627-NT",
                        county_code="530627")
    assert client.get("/api/v1/officers", headers=auth(token)).status_code == 200
    moved = client.patch(f"/api/v1/officers/{resp.json['id']}", headers=admin,
                         json={"duty_role": "supervisor"})
    assert (moved.json["role"], moved.json["station_code"]) == ("supervisor", None)
    assert client.get("/api/v1/officers", headers=auth(token)).status_code == 401


def test_stations_are_kept_and_one_with_cells_is_not_deactivated(client, admin):
    busy = client.post("/api/v1/stations/530627-WF/deactivate", headers=admin)
    assert busy.status_code == 409
    assert busy.json["errors"]["cells"] == 16
    resp = client.post("/api/v1/stations", headers=admin, json={
        "code": "530627-YS", "name": "以勒派出所", "duty_phone": "+8613912340009"})
    assert resp.status_code == 201
    assert client.post("/api/v1/stations", headers=admin, json={
        "code": "530627-YT", "name": "某所", "duty_phone": "0870-2123456"}).json[
        "errors"]["fields"][0]["code"] == "not_mobile"
    assert client.patch("/api/v1/stations/530627-YS", headers=admin,
                        json={"name": "以勒镇派出所"}).json["name"] == "以勒镇派出所"
    gone = client.post("/api/v1/stations/530627-YS/deactivate", headers=admin)
    assert gone.json["active"] is False
    assert Station.objects(code="530627-YS").get().active is False
    listed = client.get("/api/v1/stations?active=true&page_size=50", headers=admin).json
    assert "530627-YS" not in {s["code"] for s in listed}
    assert len(listed) == 4


def test_a_deactivated_station_takes_no_transfers(client, county, admin):
    client.post("/api/v1/stations", headers=admin, json={"code": "530627-YS", "name": "以勒派出所"})
    client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 张秀英")), json={
        "client_id": "transfer-to-gone-1", "category": "OTHER", "grid_code": cell_code(0, 0, 0)})
    run_jobs()
    officer = auth(token_of(county, "officer 乌峰派出所"))
    [dispatch] = client.get("/api/v1/stations/530627-WF/dispatches", headers=officer).json
    ask = {"to_station": "530627-YS", "reason": "地址在以勒"}
    client.post("/api/v1/stations/530627-YS/deactivate", headers=admin)
    refused = client.post(f"/api/v1/dispatches/{dispatch['id']}/transfer", headers=officer,
                          json=ask)
    assert refused.status_code == 422
    client.post("/api/v1/stations/530627-YS/reactivate", headers=admin)
    assert client.post(f"/api/v1/dispatches/{dispatch['id']}/transfer", headers=officer,
                       json=ask).status_code == 200


def test_a_person_does_not_silently_change_county_and_long_labels_still_audit(client):
    admin = auth(issue_token("admin", label="县" * 100))  # "admin:" + 100 characters
    someone = Reporter.by_phone("+8613800001003").first() or Reporter(
        phone="+8613800001003", name="王丽", role="teacher", county_code="530627").save()
    moved = client.patch(f"/api/v1/reporters/{someone.id}", headers=admin,
                         json={"county_code": "530602", "language": "en"})
    assert moved.status_code == 422
    assert codes(moved) == {"county_code": "invalid"}
    changed = client.patch(f"/api/v1/reporters/{someone.id}", headers=admin,
                           json={"language": "en"})
    assert changed.status_code == 200
    assert audit.AuditEntry.objects(action="reporter.change").get().actor.startswith("admin:县")


def test_erasing_an_officer_wipes_name_phone_and_second_factor_and_ends_their_tokens(
        client, county, admin):
    token = token_of(county, "officer 南台派出所")
    officer = Officer.objects(station_code="530627-NT").get()
    Officer.objects(id=officer.id).update_one(set__totp_secret="JBSWY3DPEHPK3PXP")
    resp = client.post(f"/api/v1/officers/{officer.id}/erase", headers=admin)
    assert resp.status_code == 200
    assert (resp.json["name"], resp.json["phone"], resp.json["erased"]) == (None, None, True)
    raw = Officer._get_collection().find_one({"_id": officer.id})
    assert not {"name", "phone", "phone_index", "totp_secret", "password_hash"} & set(raw)
    assert client.get("/api/v1/stations/530627-NT/dispatches",
                      headers=auth(token)).status_code == 401
    again = client.post("/api/v1/officers", headers=admin, json={
        "name": "新民警", "phone": "+8613800003002", "duty_role": "officer",
        "station_code": "530627-NT"})
    assert again.status_code == 201  # the number is free again


def test_officers_are_listed_by_duty_role_older_documents_by_their_access_role(client, admin):
    Officer._get_collection().insert_one({"name": "老民警", "role": "officer",
                                          "station_code": "530627-PJ", "county_code": "530627"})
    chiefs = client.get("/api/v1/officers?role=chief", headers=admin).json
    assert [o["duty_role"] for o in chiefs] == ["chief"]
    plain = client.get("/api/v1/officers?role=officer", headers=admin).json
    assert [(o["name"], o["duty_role"]) for o in plain] == [("老民警", "officer")]
