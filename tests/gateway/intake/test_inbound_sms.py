"""SMS through the gateway, in process: webhook → stored raw → job → report and reply.

Kannel's sendsms interface is played by a recording HTTP server on loopback;
tests/e2e/test_sms_e2e.py does the same with a real Kannel and fakesmsc.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from gateway import gridcache
from gateway.delivery import queues
from gateway.delivery.outbound_sms import send_sms
from gateway.intake.inbound_sms import handle_inbound, sweep_inbound, unseal
from gateway.privacy.phonebook import phone_index
from gateway.records.people import Reporter
from gateway.records.reports import Report
from grid.documents import Dispatch
from sms import replies
from sms.records import InboundMessage, OptOut, OutboundMessage, Sighting, utcnow
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, sms_to, texts_to, token_of, with_sms

SECRET = "s3cret-for-tests"
REGISTERED = "+8613800001001"  # 张秀英, grid worker, home cell in 城南社区
UNKNOWN = "+8613912345678"


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, SECRET, kannel_password="pw", public_tips_per_hour=3)


_ids = iter(range(1, 10_000))


def mo(client, text: str, sender: str = REGISTERED, ucs2: bool = True, **extra):
    params = {"secret": SECRET, "id": f"kannel-{next(_ids)}", "from": sender, "to": "10690110",
              "coding": "2" if ucs2 else "0", "charset": "UTF-16BE" if ucs2 else "UTF-8",
              "hex": text.encode("utf-16-be" if ucs2 else "utf-8").hex().upper(),
              "ts": "1795440000", "smsc": "fake", **extra}
    return client.get("/sms/inbound/kannel", query_string=params), params


replies_to = texts_to


def test_wrong_or_missing_secret_is_403_and_nothing_is_stored(client, county):
    resp, _ = mo(client, "R 1 test", secret="nope")
    assert resp.status_code == 403
    resp = client.get("/sms/inbound/kannel", query_string={"id": "1", "from": REGISTERED})
    assert resp.status_code == 403
    assert InboundMessage.objects.count() == 0


def test_chinese_report_from_a_registered_reporter_is_filed_routed_and_receipted(client, county):
    resp, _ = mo(client, "举报 拐卖儿童 村口面包车上有个哭闹的男孩")
    assert resp.status_code == 200
    assert resp.data == b""
    [stored] = InboundMessage.objects
    assert stored.state == "stored"  # raw first; the job does the rest
    run_jobs()
    [report] = Report.objects
    assert (report.category, report.source, report.trust, report.status) == (
        "CHILD", "sms", "mandated", "routed")
    assert report.details == "村口面包车上有个哭闹的男孩"
    assert report.station_code == "530627-WF"  # the reporter's home cell
    assert replies_to(REGISTERED) == [f"已收到举报{report.code}，已转交乌峰派出所。"]
    assert InboundMessage.objects.first().state == "handled"


def test_the_same_kannel_message_id_twice_makes_one_report_and_one_reply(client, county):
    _, params = mo(client, "R 1 @530627001002003 boy taken into van", ucs2=False)
    again = client.get("/sms/inbound/kannel", query_string=params)
    assert again.status_code == 200
    run_jobs()
    assert InboundMessage.objects.count() == 1
    assert Report.objects.count() == 1
    assert Report.objects.first().cell_code == "530627001002003"
    assert len(replies_to(REGISTERED)) == 1
    # One per station: the cell's station and, for a child case, the county desk.
    assert sorted(d.station_code for d in Dispatch.objects) == ["530627-WF", "530627-XJ"]


def test_free_text_is_a_triaged_urgent_report(client, county):
    mo(client, "村里来了个陌生人带着哭闹的小孩")
    run_jobs()
    [report] = Report.objects
    assert (report.category, report.priority) == ("UNCLASSIFIED", "urgent")
    assert "triage" in report.flags
    assert report.details == "村里来了个陌生人带着哭闹的小孩"
    assert report.code in replies_to(REGISTERED)[0]


def test_unknown_number_is_a_public_tip_and_bursts_are_limited(client, county):
    for i in range(5):
        mo(client, f"R 2 外地媳妇不让出门 {i}", sender="13912345678")
    run_jobs()
    reports = Report.objects(trust="public")
    assert reports.count() == 3  # public_tips_per_hour in this test
    assert InboundMessage.objects(state="rate_limited").count() == 2
    assert InboundMessage.objects.count() == 5  # every raw message kept
    assert Reporter.by_phone(UNKNOWN).first().role == "public"
    texts = replies_to(UNKNOWN)
    assert sum("过于频繁" in t for t in texts) == 1  # one warning, not one per message


def test_sighting_and_swept_are_tied_to_the_alert_code(client, county):
    mo(client, "S 402913 @530627001002003 在车站看到", ucs2=True)
    mo(client, "OK 402913", ucs2=False)
    run_jobs()
    kinds = sorted((s.kind, s.alert_code) for s in Sighting.objects)
    assert kinds == [("sighting", "402913"), ("swept", "402913")]
    assert Report.objects.count() == 0
    assert any("402913" in t for t in replies_to(REGISTERED))


def test_missing_alert_code_gets_a_fix_reply(client, county):
    mo(client, "S 在车站看到", ucs2=True)
    run_jobs()
    assert Sighting.objects.count() == 0
    assert "缺少编号" in replies_to(REGISTERED)[0]


def test_status_answers_only_the_phone_that_filed(client, county):
    mo(client, "R 1 test", ucs2=False)
    run_jobs()
    code = Report.objects.first().code
    mo(client, f"Q {code}", ucs2=False)
    mo(client, f"Q {code}", sender="+8613800001002", ucs2=False)  # another registered reporter
    run_jobs()
    station = gridcache.current().stations[Report.objects.first().station_code].name
    assert replies_to(REGISTERED)[-1] == f"举报{code}：已转交{station}。"
    assert replies_to("+8613800001002") == [f"未找到您的举报{code}，请核对举报码。"]


def test_status_names_the_station_that_holds_the_report_after_a_transfer(client, county):
    mo(client, "R 1 test", ucs2=False)
    run_jobs()
    report = Report.objects.first()
    stations = gridcache.current().stations
    source = stations[report.station_code]
    target = next(s for c, s in stations.items()
                  if c != source.code and s.kind != "county_desk")
    dispatch = Dispatch.objects(report_id=report.id, station_code=source.code).first()
    as_source = auth(token_of(county, f"officer {source.name}"))
    as_target = auth(token_of(county, f"officer {target.name}"))
    assert client.post(f"/api/v1/dispatches/{dispatch.id}/transfer", headers=as_source,
                       json={"to_station": target.code, "reason": "不是本所辖区"}
                       ).status_code == 200
    assert client.post(f"/api/v1/dispatches/{dispatch.id}/accept-transfer",
                       headers=as_target).status_code == 200
    mo(client, f"Q {report.code}", ucs2=False)
    run_jobs()
    assert replies_to(REGISTERED)[-1] == f"举报{report.code}：已转交{target.name}。"


def test_help_and_unsubscribe(client, county):
    mo(client, "帮助")
    mo(client, "TD", ucs2=False)
    mo(client, "TD", sender=UNKNOWN, ucs2=False)
    run_jobs()
    mine = replies_to(REGISTERED)
    assert any(t.startswith("举报：R") for t in mine)
    assert any("不能退订" in t for t in mine)
    assert OptOut.objects(phone_index=phone_index(UNKNOWN)).count() == 1
    assert OptOut.objects(phone_index=phone_index(REGISTERED)).count() == 0
    assert "phone" not in OptOut._get_collection().find_one()  # only the blind index is kept


def test_help_followed_by_a_story_is_filed_as_a_report(client, county):
    mo(client, "帮助 我的孩子在集市被人抱走了")
    run_jobs()
    [report] = Report.objects
    assert "孩子" in report.details
    assert "triage" in report.flags


@pytest.mark.parametrize("sender", ["12", "+99912345", "abc", "+8610000"])
def test_invalid_or_spoofed_numbers_are_kept_but_not_answered(client, county, sender):
    resp, _ = mo(client, "R 1 test", sender=sender, ucs2=False)
    assert resp.status_code == 200
    run_jobs()
    [stored] = InboundMessage.objects
    assert stored.state == "rejected"
    assert stored.sender_valid is False
    assert Report.objects.count() == 0
    assert OutboundMessage.objects.count() == 0


def test_missing_parameters_are_kept_for_a_person_and_not_retried(client, county):
    resp = client.get("/sms/inbound/kannel", query_string={"secret": SECRET, "id": "x1",
                                                           "hex": "41"})
    assert resp.status_code == 202  # Kannel stops retrying; a retry cannot fix it
    assert b"missing_parameter: from" in resp.data
    [kept] = InboundMessage.objects
    assert kept.state == "rejected"
    assert unseal(kept.raw["hex"]) == "41"
    assert "secret" not in kept.raw


@pytest.mark.parametrize("odd", ["a\x00b", "$where", "a.b", "名字"])
def test_any_parameter_name_is_kept_never_a_500(client, county, odd):
    # Found by schemathesis: a NUL byte in a parameter's name was a 500 (not a field name).
    resp, _ = mo(client, "R 1 test", ucs2=False, **{odd: "v"})
    assert resp.status_code == 200
    [kept] = InboundMessage.objects
    assert kept.raw["x-" + odd.encode().hex()] == "v"


def test_missing_parameters_with_an_odd_name_are_kept_too(client, county):
    resp = client.get("/sms/inbound/kannel", query_string={"secret": SECRET, "a\x00": "v"})
    assert resp.status_code == 202
    [kept] = InboundMessage.objects
    assert kept.raw["x-" + b"a\x00".hex()] == "v"


def test_undecodable_bytes_and_odd_charsets_are_stored_and_filed(client, county):
    resp, _ = mo(client, "", hex="FFFE41D800", coding="2", charset="x-klingon")
    assert resp.status_code == 200
    run_jobs()
    stored = InboundMessage.objects.first()
    assert unseal(stored.raw["text_hex"]) == "FFFE41D800"
    assert stored.state == "handled"


def test_ten_kilobytes_of_text_is_kept_whole_and_filed_truncated(client, county):
    text = "R 1 " + "面包车" * 3400
    resp = client.post("/sms/inbound/kannel?" + "&".join(
        f"{k}={v}" for k, v in {"secret": SECRET, "id": "big-1", "from": REGISTERED}.items()),
        data=text.encode("utf-8"), content_type="text/plain; charset=utf-8")
    assert resp.status_code == 200
    run_jobs()
    assert unseal(InboundMessage.objects.first().text) == text
    report = Report.objects.first()
    assert 0 < len(report.details) <= 4000


def test_receipt_is_sent_through_sendsms_and_delivery_reported(client, county, sendsms):
    mo(client, "R 1 test", ucs2=False)
    run_jobs()
    [request] = [r for r in sendsms.requests if r.params["to"] == REGISTERED]
    assert request.path == "/cgi-bin/sendsms"
    assert request.params["coding"] == "2"  # Chinese receipt: UCS-2
    assert request.params["charset"] == "UTF-8"
    assert request.params["dlr-mask"] == "19"
    assert request.params["text"].startswith("已收到举报R")
    ref = sms_to(REGISTERED)[0].ref
    assert OutboundMessage.objects(ref=ref).first().state == "sent"
    dlr = client.get("/sms/dlr/kannel", query_string={"secret": SECRET, "ref": ref, "status": "1"})
    assert dlr.status_code == 200
    assert OutboundMessage.objects(ref=ref).first().state == "delivered"
    assert client.get("/sms/dlr/kannel", query_string={"ref": ref, "status": "1"}
                      ).status_code == 403


def test_duty_phone_gets_a_notice_without_personal_details(client, county, sendsms):
    mo(client, "R 1 穿红衣男孩被抱走 张三 13900000000")
    run_jobs()
    # 乌峰派出所's duty phone and the county desk's.
    assert len(sms_to("+8613800002001", purpose="dispatch_notice")) == 1
    assert len(sms_to("+8613800002099", purpose="dispatch_notice")) == 1
    [notice] = texts_to("+8613800002001", purpose="dispatch_notice")
    assert "张三" not in notice
    assert "139" not in notice
    assert notice.startswith("新线索R")


def test_permanent_send_errors_are_recorded_not_retried(client, county, sendsms):
    sendsms.status, sendsms.body = 403, "Authorization failed for sendsms"
    mo(client, "R 1 test", ucs2=False)
    run_jobs()
    receipt = sms_to(REGISTERED)[0]
    assert (receipt.state, receipt.last_error, receipt.attempts) == ("failed", "unauthorized", 1)


def test_transient_send_errors_are_retried(client, county, sendsms):
    sendsms.status, sendsms.body = 503, "Temporal failure"
    mo(client, "R 1 test", ucs2=False)
    run_jobs()  # the first try fails; RQ schedules a retry
    receipt = sms_to(REGISTERED)[0]
    assert (receipt.state, receipt.last_error) == ("queued", "unavailable")
    sendsms.status, sendsms.body = 202, "0: Accepted for delivery"
    assert send_sms(receipt.ref) == "sent"
    assert OutboundMessage.objects(ref=receipt.ref).first().attempts == 2


NEW_NUMBER = "+8613955550001"


def test_the_first_messages_of_a_new_number_racing_all_get_an_outcome(client, county):
    n = 8
    for i in range(n):
        mo(client, f"R 1 陌生人带小孩 {i}", sender=NEW_NUMBER, ucs2=True)
    queues.queue(queues.INBOUND).empty()  # handled here, all at once, not by the queued jobs
    ids = [str(m.id) for m in InboundMessage.objects(state="stored")]
    assert len(ids) == n
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def handle(inbound_id: str) -> None:
        start.wait()
        try:
            handle_inbound(inbound_id)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=handle, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert InboundMessage.objects(state="stored").count() == 0
    assert Reporter.objects(phone_index=phone_index(NEW_NUMBER)).count() == 1
    # Every message has its outcome: a public tip filed, or refused by the tip limit.
    outcomes = [m.state for m in InboundMessage.objects]
    assert len(outcomes) == n
    filed = Report.objects(trust="public").count()
    assert filed >= 1
    assert filed + outcomes.count("rate_limited") == n


def test_the_sweeper_requeues_a_message_whose_job_was_lost(client, county, settings):
    mo(client, "R 1 车站有人拐小孩", sender=NEW_NUMBER)
    queues.queue(queues.INBOUND).empty()  # the job is gone: a worker killed, Redis restarted
    [msg] = InboundMessage.objects(state="stored")
    assert sweep_inbound() == 0  # not overdue yet
    InboundMessage.objects(id=msg.id).update_one(
        set__received_at=utcnow() - dt.timedelta(seconds=settings.sweep_after_s + 1))
    assert sweep_inbound() == 1
    run_jobs()
    assert InboundMessage.objects(id=msg.id).first().state != "stored"
    assert Report.objects(trust="public").count() == 1
    assert sweep_inbound() == 0


def test_an_unknown_grid_code_is_told_in_the_receipt(client, county):
    mo(client, "R 1 @530627999999999 男孩被抱上面包车")
    run_jobs()
    [report] = Report.objects
    assert report.station_code == "530627-WF"  # the reporter's home cell, not the code
    assert "grid_code_unknown" in report.flags
    assert replies_to(REGISTERED) == [
        f"已收到举报{report.code}，已转交乌峰派出所。{replies.LOCATION_NOTES['grid_code_unknown']}"]


def test_a_tip_only_the_county_desk_can_take_says_so(client, county):
    mo(client, "R 1 有个男孩被抱上面包车", sender=UNKNOWN)
    run_jobs()
    [report] = Report.objects
    assert "unplaced_review" in report.flags
    [receipt] = replies_to(UNKNOWN)
    assert receipt.startswith(f"已收到举报{report.code}")
    assert receipt.endswith(replies.LOCATION_NOTES["unplaced_review"])
    assert len(receipt) <= replies.UCS2_SEGMENT


def test_a_note_that_does_not_fit_the_receipt_goes_in_a_second_sms():
    receipt = "已收到举报R7K3Q9M，已转交" + "很长的派出所名字" * 5 + "。"
    assert replies.with_note(receipt, None) == (receipt, None)
    note = replies.LOCATION_NOTES["unplaced_review"]
    assert replies.with_note(receipt, note) == (receipt, note)
    assert replies.with_note("已收到。", note) == ("已收到。" + note, None)


def test_a_deactivated_reporters_sms_is_a_public_tip_and_they_are_told_why(client, county):
    Reporter.by_phone(REGISTERED).update(set__active=False)
    mo(client, "R 1 村口面包车上有个哭闹的男孩")
    run_jobs()
    [report] = Report.objects
    assert report.trust == "public"
    assert "reporter_deactivated" in report.flags
    assert report.reporter_id == Reporter.by_phone(REGISTERED).get().id  # still theirs
    texts = replies_to(REGISTERED)
    assert texts[0].startswith(f"已收到举报{report.code}")
    assert replies.reporter_deactivated() in texts
    # Reactivated, the next one is a mandated report again, without the note.
    Reporter.by_phone(REGISTERED).update(set__active=True)
    mo(client, "R 1 又看见那辆面包车")
    run_jobs()
    assert Report.objects.order_by("-created_at").first().trust == "mandated"
    assert replies_to(REGISTERED).count(replies.reporter_deactivated()) == 1


def test_a_reporter_is_answered_in_their_own_language(client, county):
    english = "+8613800001010"  # 吴静, hotel staff, enrolled with language en
    mo(client, "R 1 a crying boy taken into a white van", sender=english, ucs2=False)
    mo(client, "Q R7K3Q9M", sender=english, ucs2=False)
    run_jobs()
    [report] = Report.objects
    receipt, status = replies_to(english)
    assert receipt == replies.receipt(report.code, gridcache.current().stations[
        report.station_code].name, lang="en")
    assert receipt.startswith(f"Report {report.code} ")  # English, but for the station name
    assert status == replies.not_found("R7K3Q9M", lang="en")
    # ...and a Chinese reporter still in Chinese.
    mo(client, "Q R7K3Q9M")
    run_jobs()
    assert replies_to(REGISTERED) == [replies.not_found("R7K3Q9M")]


def test_the_sweeper_leaves_a_message_whose_job_still_waits(client, county, settings):
    mo(client, "R 1 车站有人拐小孩", sender=NEW_NUMBER)
    [msg] = InboundMessage.objects(state="stored")
    InboundMessage.objects(id=msg.id).update_one(
        set__received_at=utcnow() - dt.timedelta(seconds=settings.sweep_after_s + 1))
    assert sweep_inbound() == 0  # queued once already: not again behind itself
    assert queues.queue(queues.INBOUND).count == 1
    run_jobs()
    assert InboundMessage.objects(id=msg.id).first().state == "handled"


def test_two_runs_of_one_send_job_at_once_text_once(client, county, monkeypatch):
    """A send job queued twice (a route run twice at once, a sweep after Redis lost the job)
    and picked by two workers: the second run finds the first sending and stands back."""
    from gateway.delivery import outbound_sms
    from sms.providers import SendResult

    inside, release, calls = threading.Event(), threading.Event(), []

    class SlowKannel:
        def send(self, message):
            calls.append(message.ref)
            inside.set()
            release.wait(10)
            return SendResult(None, "accepted")

    mo(client, "帮助")
    [msg] = InboundMessage.objects(state="stored")
    handle_inbound(str(msg.id))  # records the reply and queues its send job
    [reply] = OutboundMessage.objects(purpose="help")
    monkeypatch.setattr(outbound_sms, "provider", SlowKannel)
    first = threading.Thread(target=send_sms, args=(reply.ref,))
    first.start()
    assert inside.wait(10)
    assert send_sms(reply.ref) == "sending"  # the other worker's copy, meanwhile
    release.set()
    first.join(10)
    assert calls == [reply.ref]
    assert OutboundMessage.objects(ref=reply.ref).first().state == "sent"


def test_a_reply_whose_send_job_was_lost_is_sent_after_a_sweep(client, county, sendsms):
    from gateway.delivery.outbound_sms import sweep_outbound

    mo(client, "帮助")
    [msg] = InboundMessage.objects(state="stored")
    handle_inbound(str(msg.id))
    [reply] = OutboundMessage.objects(purpose="help")
    assert sweep_outbound(0) == 0  # its send job still waits in the queue
    queues.queue(queues.SMS).empty()  # then is lost: a Redis restart
    assert sweep_outbound(0) == 1
    assert sweep_outbound(0) == 0
    run_jobs()
    assert OutboundMessage.objects(ref=reply.ref).first().state == "sent"
    assert len(sendsms.requests) == 1


def test_a_public_tip_handled_again_after_its_run_died_is_not_refused_by_its_own_count(
        client, county, monkeypatch):
    """A handler killed after filing the report (here: its wait for the routing fails) is
    run again; the message was already counted against the number's hourly tips, and its
    second run must not count it again and refuse the report it filed."""
    from gateway.intake import inbound_sms

    for i in range(2):
        mo(client, f"R 2 外地媳妇不让出门 {i}", sender="13912345678")
    run_jobs()  # 2 of the 3 tips this hour
    mo(client, "R 2 外地媳妇不让出门 last", sender="13912345678")
    [last] = InboundMessage.objects(state="stored")
    route = inbound_sms.route

    def dies(report_id, wait=False):
        raise RuntimeError("worker killed while waiting for the routing")

    monkeypatch.setattr(inbound_sms, "route", dies)
    with pytest.raises(RuntimeError):
        handle_inbound(str(last.id))
    monkeypatch.setattr(inbound_sms, "route", route)
    assert handle_inbound(str(last.id)) == "report"
    assert InboundMessage.objects(id=last.id).get().state == "handled"
    assert Report.objects(trust="public").count() == 3
