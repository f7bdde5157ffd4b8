"""The reporting duty against what the test works out from the roster and raw reports."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from gateway.records.people import Reporter
from gateway.records.units import Unit
from gateway.sample import COUNTY, cell_code
from tests.gateway.insight.seeding import insert_reports, report, shown
from tests.helpers import auth, token_of

START = dt.datetime(2026, 3, 1) - dt.timedelta(hours=8)
END = dt.datetime(2026, 4, 1) - dt.timedelta(hours=8)


def test_duty_matches_the_roster_and_reports(client, county):
    people = {r.phone: r for r in Reporter.objects(county_code=COUNTY)}
    teacher = people["+8613800001003"]  # 镇雄县第一小学 (U03)
    doctor = people["+8613800001005"]  # 人民医院 (U05)
    registrar = people["+8613800001007"]  # 婚姻登记处 (U07): reported 80 days ago only
    director = people["+8613800001008"]  # a child director with no unit
    stranger = people["+8613800001011"]  # the public: not mandated
    cell = cell_code(0, 0, 0)
    docs = ([report(cell, "CHILD", START + dt.timedelta(days=i), reporter_id=teacher.id)
             for i in range(7)]
            + [report(cell, "WOMAN", START + dt.timedelta(days=2), reporter_id=doctor.id)
               for _ in range(2)]
            + [report(cell, "OTHER", END - dt.timedelta(days=80), reporter_id=registrar.id)]
            + [report(cell, "OTHER", START + dt.timedelta(days=1), reporter_id=director.id)]
            + [report(cell, "OTHER", START + dt.timedelta(days=1), reporter_id=stranger.id)]
            # Outside the period and the 90 days: counts for nothing.
            + [report(cell, "OTHER", END - dt.timedelta(days=95), reporter_id=doctor.id)])
    insert_reports(docs)
    resp = client.get("/api/v1/insight/duty", headers=auth(token_of(county, "supervisor")),
                      query_string={"start": "2026-03-01", "end": "2026-04-01"})
    assert resp.status_code == 200, resp.json
    body = resp.json

    period = [d for d in docs if START <= d["created_at"] < END]
    recent = [d for d in docs if END - dt.timedelta(days=90) <= d["created_at"] < END]
    unit_of = {r.id: r.unit for r in Reporter.objects(county_code=COUNTY)}
    per_unit = Counter(unit_of.get(d["reporter_id"]) for d in period)
    recent_units = {unit_of.get(d["reporter_id"]) for d in recent}
    units = list(Unit.objects(county_code=COUNTY))
    rows = {u["code"]: u for u in body["units"]}
    assert set(rows) == {u.code for u in units}
    for unit in units:
        assert rows[unit.code]["reports"] == shown(per_unit[unit.code])
        assert rows[unit.code]["reported_in_90_days"] == (unit.code in recent_units)
        assert rows[unit.code]["reporters"] == Reporter.objects(unit=unit.code).count()
    assert rows["530627-U03"]["reports"] == 5  # 7 reports: "5 to 9"
    assert rows["530627-U05"]["reports"] == "<5"
    assert {u["code"] for u in body["silent_units"]} == {
        u.code for u in units if u.code not in recent_units}
    assert "530627-U07" not in {u["code"] for u in body["silent_units"]}

    by_type = {t["type"]: t for t in body["by_type"]}
    for kind in {u.type for u in units}:
        of_kind = [u for u in units if u.type == kind]
        reported = [u for u in of_kind if per_unit[u.code]]
        assert by_type[kind]["units"] == len(of_kind)
        assert by_type[kind]["units_reported"] == len(reported)
        assert by_type[kind]["reported_pct"] == round(100 * len(reported) / len(of_kind))
    by_township = {t["township"]: t for t in body["by_township"]}
    assert by_township["530627001000"]["units"] == sum(
        1 for u in units if u.cell_code.startswith("530627001"))
    assert by_township["530627001000"]["units_reported"] == 2  # U03 and U05
    by_role = {r["role"]: r for r in body["by_role"]}
    assert "public" not in by_role
    role_of = {r.id: r.role for r in Reporter.objects(county_code=COUNTY)}
    for role, row in by_role.items():
        mine = [d for d in period if role_of.get(d["reporter_id"]) == role]
        assert row["reports"] == shown(len(mine))
        assert row["reporters_reported"] == len({d["reporter_id"] for d in mine})
        assert row["reporters"] == Reporter.objects(county_code=COUNTY, role=role).count()
    # No name and no phone of a reporter anywhere in the answer.
    text = resp.get_data(as_text=True)
    assert all(r.name not in text and r.phone[1:] not in text for r in people.values())


def test_duty_bad_input(client, county):
    supervisor = auth(token_of(county, "supervisor"))
    assert client.get("/api/v1/insight/duty", headers=supervisor,
                      query_string={"county": "110101"}).status_code == 403
    assert client.get("/api/v1/insight/duty", headers=supervisor, query_string={
        "start": "2010-01-01", "end": "2020-01-01"}).status_code == 422
