"""A missing-child alert end to end: the API issues it, RQ workers fan it out through real
Kannel to fakesmsc (the carrier) ring by ring, a grid worker texts a sighting back and the
county desk gets a critical clue, an `OK` turns a cell swept on the coverage map, found
thanks those who had the alert and a cancellation reaches everyone it reached."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gateway.records.reports import Report
from gateway.sample import COUNTY, COUNTY_DESK, cell_code
from grid.documents import Dispatch, GridCell
from sms import replies
from tests.e2e.sms_app import SHORT_CODE, Handset
from tests.helpers import auth, cell_centre, token_of

pytestmark = pytest.mark.e2e

WORKER = "+8613800001001"  # 张秀英, grid worker of cell (0, 0, 0)
TEACHER = "+8613800001003"  # 王丽, within 1 km of it
FAR = "+8613800001002"  # 李国强, 泼机: outside the first ring


def test_an_alert_reaches_its_ring_and_a_texted_sighting_reaches_the_desk(
        sms_stack, settings, county):
    stack, carrier = sms_stack
    web = next(s for s in stack.services if s.name.startswith("gunicorn"))
    import http.client
    import json

    lat, lon = cell_centre(GridCell.objects.get(code=cell_code(0, 0, 0)).ring)
    body = json.dumps({
        "child": {"sex": "male", "age_years": 5, "clothing": "红上衣"},
        "seen_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).isoformat(),
        "location": {"lat": lat, "lon": lon}, "place": "城关车站",
        "rings": [{"radius_km": 1, "after_min": 0}, {"radius_km": 10, "after_min": 30}]})
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    headers = {**auth(token_of(county, "supervisor")), "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/alerts", body=body.encode(), headers=headers)
    resp = conn.getresponse()
    issued = json.loads(resp.read())
    assert resp.status == 201, issued
    code = issued["code"]

    handsets = Handset(carrier)
    [to_worker] = handsets.texts_to(WORKER, 1)
    [to_teacher] = handsets.texts_to(TEACHER, 1)
    assert to_worker == to_teacher
    assert to_worker.startswith(f"【寻人{code}】男孩约5岁，红上衣，")
    assert to_worker.endswith(f"见到回S{code}+地点，已找过回OK{code}")

    carrier.send_mo(WORKER, SHORT_CODE, f"S{code} 南台车站看到", ucs2=True)
    receipt = handsets.texts_to(WORKER, 2)[1]
    assert receipt == f"已收到协查{code}的线索，已转交民警。谢谢！"
    report = Report.objects.get(flags=f"alert:{code}")
    clues = Dispatch.objects(report_id=report.id)
    assert COUNTY_DESK[0] in {d.station_code for d in clues}
    assert {d.priority for d in clues} == {"critical"}  # at the top of every inbox it is in

    # A new connection: gunicorn closes an idle keep-alive one after 2 s, and the texts
    # above can take longer than that on a loaded machine.
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    conn.request("POST", f"/api/v1/alerts/{code}/found", headers=headers)
    found = conn.getresponse()
    assert json.loads(found.read())["status"] == "found"
    thanks = f"【寻人{code}】孩子已找到，感谢您的协助！无需再回复。"
    assert handsets.texts_to(TEACHER, 2)[1] == thanks
    assert thanks in handsets.texts_to(WORKER, 3)
    # The far grid worker was never in a sent ring: no alert, no thanks.
    handsets.seen += carrier.read_mt(timeout=1.0)
    assert not [t for _, to, _, t in handsets.seen if to.lstrip("+") == FAR.lstrip("+")]


def _api(port: int, method: str, path: str, token: str,
         body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """One request on a new connection (gunicorn closes an idle keep-alive one after 2 s)."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers={**auth(token), "Content-Type": "application/json"},
                     body=None if body is None else json.dumps(body).encode())
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _furthest_km(lat: float, lon: float, cells: Any) -> float:
    """How far the furthest corner of any of the cells is from the point (haversine)."""
    import math

    def km(a: float, b: float) -> float:
        p1, p2 = math.radians(lat), math.radians(a)
        h = (math.sin((p2 - p1) / 2) ** 2
             + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b - lon) / 2) ** 2)
        return 2 * 6371.0088 * math.asin(math.sqrt(h))

    return max(km(y, x) for cell in cells for x, y in cell.ring)


def test_rings_reach_exactly_their_phones_ok_sweeps_a_cell_and_cancel_reaches_all_reached(
        sms_stack, settings, county):
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from gateway.alerts.fanout import ring_job_id
    from gateway.delivery import queues
    from gateway.extensions import redis_store
    from gateway.privacy import phonebook
    from gateway.records.people import Reporter

    stack, carrier = sms_stack
    web = next(s for s in stack.services if s.name.startswith("gunicorn"))
    supervisor = token_of(county, "supervisor")
    lat, lon = cell_centre(GridCell.objects.get(code=cell_code(0, 0, 0)).ring)
    # Ring 2 (10 km) holds the whole sample county: every active reporter who is not a
    # public tipster, checked here by distance, not by the code under test.
    assert _furthest_km(lat, lon, GridCell.objects(county_code=COUNTY)) < 10
    everyone = {r.phone.lstrip("+") for r in Reporter.objects(active=True, role__ne="public")}
    first = {WORKER.lstrip("+"), TEACHER.lstrip("+")}  # within 1 km (tests/gateway/alerts)
    handsets = Handset(carrier)

    status, issued = _api(web.port, "POST", "/api/v1/alerts", supervisor, {
        "child": {"sex": "male", "age_years": 5, "clothing": "红上衣"},
        "seen_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).isoformat(),
        "location": {"lat": lat, "lon": lon}, "place": "城关车站",
        "rings": [{"radius_km": 1, "after_min": 0}, {"radius_km": 10, "after_min": 30}]})
    assert status == 201, issued
    code = issued["code"]

    def alert_texts() -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, to, _, text in handsets.seen:
            if f"S{code}" in text and f"OK{code}" in text:  # the alert, in any language
                counts[to.lstrip("+")] = counts.get(to.lstrip("+"), 0) + 1
        return counts

    for phone in first:
        handsets.texts_to(phone, 1)
    handsets.seen += carrier.read_mt(timeout=2.0)
    assert alert_texts() == dict.fromkeys(first, 1)  # the first ring: exactly its phones

    # A grid worker who searched texts OK<code>: the cell turns swept on the map.
    carrier.send_mo(TEACHER, SHORT_CODE, f"OK{code}")
    assert handsets.texts_to(TEACHER, 2)[1].startswith("已记录")
    status, cover = _api(web.port, "GET", f"/api/v1/alerts/{code}/coverage", supervisor)
    assert status == 200
    teacher_cell = Reporter.objects.get(phone_index=phonebook.phone_index(TEACHER)).home_cell
    swept = {f["properties"]["code"] for f in cover["features"]
             if f["properties"]["state"] == "swept"}
    assert swept == {teacher_cell}
    assert cover["properties"]["swept"] == 1
    assert cover["properties"]["texted"] == 2

    # +30 min: RQ's scheduler would move the second ring's job to the queue now.
    job = Job.fetch(ring_job_id(code, 1), connection=redis_store.conn)
    ScheduledJobRegistry(queues.ALERTS, connection=redis_store.conn).remove(job)
    queues.queue(queues.ALERTS).enqueue_job(job)
    for phone in everyone - first:
        handsets.texts_to(phone, 1)
    handsets.seen += carrier.read_mt(timeout=2.0)
    assert alert_texts() == dict.fromkeys(everyone, 1)  # the new ones once, nobody twice

    status, ended = _api(web.port, "POST", f"/api/v1/alerts/{code}/cancel", supervisor,
                         {"reason": "家长已联系上孩子，误报"})
    assert (status, ended["status"]) == (200, "cancelled")
    language = {r.phone.lstrip("+"): r.language or "zh"
                for r in Reporter.objects(active=True, role__ne="public")}
    for phone in everyone:
        cancelled = replies.alert_cancelled(code, lang=language[phone])
        assert cancelled in handsets.texts_to(phone, 3 if phone == TEACHER.lstrip("+") else 2)
    handsets.seen += carrier.read_mt(timeout=2.0)
    got_cancel = [to.lstrip("+") for _, to, _, text in handsets.seen
                  if text == replies.alert_cancelled(code, lang=language[to.lstrip("+")])]
    assert sorted(got_cancel) == sorted(everyone)  # everyone reached, once each
