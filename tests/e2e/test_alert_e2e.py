"""A missing-child alert end to end: the API issues it, RQ workers fan it out through real
Kannel to fakesmsc (the carrier), a grid worker texts a sighting back, the county desk
gets the clue, and found thanks those who had the alert."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.records.reports import Report
from gateway.sample import COUNTY_DESK, cell_code
from grid.documents import Dispatch, GridCell
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
    assert COUNTY_DESK[0] in {d.station_code for d in Dispatch.objects(report_id=report.id)}

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
