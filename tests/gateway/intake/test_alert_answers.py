"""Answers to an alert by SMS: a sighting becomes a critical clue, OK marks a cell swept."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.records.reports import Report
from gateway.sample import COUNTY_DESK, cell_code
from grid.documents import Dispatch
from sms.records import InboundMessage, Sighting
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.intake.test_inbound_sms import SECRET, mo
from tests.helpers import auth, sendsms_messages, texts_to, token_of, with_sms

WORKER = "+8613800001001"  # 张秀英, grid worker of cell (0, 0, 0): reached by ring 1
STRANGER = "+8613912345678"  # never sent the alert
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, SECRET, kannel_password="pw", sms_rate_per_s=10_000)


@pytest.fixture
def alert(client, county, sendsms):
    resp = client.post("/api/v1/alerts", headers=auth(token_of(county, "supervisor")), json={
        "child": {"sex": "male", "age_years": 5, "clothing": "红上衣"},
        "seen_at": (dt.datetime.now(BEIJING) - dt.timedelta(minutes=5)).isoformat(),
        "grid_code": cell_code(0, 0, 0), "place": "城关车站"})
    assert resp.status_code == 201, resp.json
    run_jobs()  # ring 1 texts the cell's grid worker
    assert any(resp.json["code"] in params["text"] for to, params in sendsms_messages(sendsms)
               if to == WORKER)
    return resp.json["code"]


def test_a_sighting_is_a_critical_clue_for_the_county_desk_and_is_receipted(client, alert):
    mo(client, f"S{alert} @{cell_code(1, 0, 0)} 南台车站看到穿红上衣的男孩")
    run_jobs()
    report = Report.objects.get()
    assert report.category == "CHILD"
    assert f"alert:{alert}" in report.flags
    assert "alert_public" not in report.flags
    assert report.trust == "mandated"
    assert report.priority == "critical"
    stations = {d.station_code for d in Dispatch.objects(report_id=report.id)}
    assert stations == {"530627-NT", COUNTY_DESK[0]}  # where it was seen, and the issuer
    assert {d.priority for d in Dispatch.objects(report_id=report.id)} == {"critical"}
    sighting = Sighting.objects.get()
    assert (sighting.state, sighting.report_id, sighting.public) == ("linked", report.id, False)
    assert texts_to(WORKER)[-1] == f"已收到协查{alert}的线索，已转交民警。谢谢！"


def test_a_sighting_from_a_number_never_texted_is_a_public_clue_all_the_same(client, alert):
    full_width = "Ｓ" + alert.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    mo(client, f"{full_width}城关车站门口", sender=STRANGER)
    run_jobs()
    report = Report.objects.get()
    assert {f"alert:{alert}", "alert_public"} <= set(report.flags)
    assert report.trust == "public"
    assert COUNTY_DESK[0] in {d.station_code for d in Dispatch.objects(report_id=report.id)}
    assert Sighting.objects.get().public is True
    assert texts_to(STRANGER) == [f"已收到协查{alert}的线索，已转交民警。谢谢！"]


def test_ok_marks_the_senders_cell_swept(client, alert):
    mo(client, f"OK{alert}", ucs2=False)
    run_jobs()
    sighting = Sighting.objects.get()
    assert (sighting.kind, sighting.cell_code, sighting.state) == (
        "swept", cell_code(0, 0, 0), "linked")
    assert Report.objects.count() == 0
    assert texts_to(WORKER)[-1] == f"已记录：协查{alert}，您的网格已排查完毕。谢谢！"


def test_an_unknown_or_ended_code_is_stored_and_answered_plainly(client, county, alert):
    mo(client, "S 999999 看到了")
    run_jobs()
    assert texts_to(WORKER)[-1] == ("协查999999不存在或已结束，无需回复。"
                                    "如有新线索，请直接发送举报。")
    client.post(f"/api/v1/alerts/{alert}/found", headers=auth(token_of(county, "supervisor")))
    mo(client, f"S{alert} 看到了")
    run_jobs()
    assert texts_to(WORKER)[-1].startswith(f"协查{alert}不存在或已结束")
    assert Report.objects.count() == 0
    assert sorted(s.state for s in Sighting.objects) == ["not_open", "not_open"]


def test_a_flood_from_one_number_is_stored_and_answered_once(client, alert):
    for n in range(8):
        mo(client, f"S{alert} 看到了{n}", sender=STRANGER)
    run_jobs()
    assert Sighting.objects.count() == 8  # nothing lost
    assert Sighting.objects(state="rate_limited").count() == 3
    assert Report.objects.count() == 5
    assert InboundMessage.objects(state="rate_limited").count() == 3
    assert sum("过于频繁" in t for t in texts_to(STRANGER)) == 1
