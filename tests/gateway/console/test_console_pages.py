"""The police console with Flask's test client: login, sessions, CSRF, the inbox and a
dispatch's acts, refusals as pages (never a 500, nothing changed twice)."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.console import sessions
from gateway.extensions import redis_store
from grid.documents import Dispatch
from tests.gateway.api.test_dispatches_api import file
from tests.gateway.console.conftest import (
    NT_OFFICER,
    REPORTER,
    SUPERVISOR,
    WF_OFFICER,
    enrol,
    form_of,
    hidden,
)
from tests.helpers import auth, token_of

WF = "530627-WF"


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(case_window_s=0)


@pytest.fixture
def officer(log_in):
    """Logged in as the duty officer of 乌峰派出所 (with a TOTP code)."""
    resp = log_in(WF_OFFICER, enrol(WF_OFFICER).now())
    assert resp.status_code == 303, resp.text
    return resp


def session_cookie(resp) -> str:
    return next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("sg_console="))


def test_an_officer_logs_in_with_password_and_code_and_lands_in_the_inbox(client, log_in):
    totp = enrol(WF_OFFICER)
    resp = log_in(WF_OFFICER, totp.now())
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/console/inbox")
    cookie = session_cookie(resp)
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/console/" in cookie
    assert "Secure" not in cookie  # plain HTTP in this test
    page = client.get("/console/inbox")
    assert page.status_code == 200
    assert "乌峰派出所" in page.text


def test_a_missing_or_wrong_code_is_refused_with_a_message(client, log_in):
    totp = enrol(WF_OFFICER)
    missing = log_in(WF_OFFICER)
    assert missing.status_code == 401
    assert "6位动态验证码" in missing.text
    wrong = log_in(WF_OFFICER, "000000" if totp.now() != "000000" else "111111")
    assert wrong.status_code == 401
    assert "错误" in wrong.text
    assert not any(h.startswith("sg_console=") for h in wrong.headers.getlist("Set-Cookie"))
    assert client.get("/console/inbox").status_code == 303  # still logged out


def test_a_reporter_cannot_log_in_to_the_console(client, log_in):
    resp = log_in(REPORTER)
    assert resp.status_code == 403
    assert "仅供民警和督导员使用" in resp.text
    assert not any(h.startswith("sg_console=") for h in resp.headers.getlist("Set-Cookie"))
    assert client.get("/console/inbox").status_code == 303


def test_the_cookie_is_secure_behind_tls(settings, county):
    from gateway.app import create_app

    app = create_app(settings.with_(https_only=True))
    client = app.test_client()
    form = client.get("/console/login")
    resp = client.post("/console/login", data={
        "csrf": hidden(form.text), "phone": WF_OFFICER, "otp": enrol(WF_OFFICER).now(),
        "password": county.password})
    assert "Secure" in session_cookie(resp)


def test_a_login_form_without_its_token_is_refused(client, county):
    resp = client.post("/console/login", data={"phone": WF_OFFICER, "password": county.password})
    assert resp.status_code == 403
    assert "安全令牌" in resp.text


def test_the_inbox_shows_the_stations_open_clues_overdue_first(client, county, officer):
    codes = file(client, county, 3)
    file(client, county, 1, township=1)  # 南台's, not shown
    late = Dispatch.objects(report_code=codes[0]).first()
    late.update(set__ack_deadline=dt.datetime(2020, 1, 1))
    page = client.get("/console/inbox").text
    shown = [c for c in codes if c in page]
    assert shown == codes
    assert page.index(codes[0]) < page.index(codes[2]) < page.index(codes[1])
    rows = client.get("/console/inbox/rows")
    assert rows.status_code == 200
    assert 'class="prio-critical overdue"' in rows.text
    assert Dispatch.objects(station_code="530627-NT").first().report_code not in page


def test_acknowledge_twice_changes_it_once(client, county, officer):
    [code] = file(client, county, 1)
    d = Dispatch.objects(report_code=code).first()
    page = client.get(f"/console/dispatches/{d.id}").text
    assert "网格员" in page  # the reporter, by role
    assert "张秀英" not in page
    assert "13800001001" not in page
    form = form_of(page, f"/console/dispatches/{d.id}/acknowledge")
    first = client.post(f"/console/dispatches/{d.id}/acknowledge", data=form)
    assert first.status_code == 303
    again = client.post(f"/console/dispatches/{d.id}/acknowledge", data=form)
    assert again.status_code == 409
    assert "已经提交过" in again.text
    fresh = form_of(page, f"/console/dispatches/{d.id}/acknowledge")
    fresh["once"] = "another-marker-1234"
    stale = client.post(f"/console/dispatches/{d.id}/acknowledge", data=fresh)
    assert stale.status_code == 409
    assert "已签收" in stale.text
    d.reload()
    assert d.status == "acknowledged"
    assert [h["action"] for h in d.history].count("acknowledge") == 1


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client, county, officer):
    [code] = file(client, county, 1)
    d = Dispatch.objects(report_code=code).first()
    resp = client.post(f"/console/dispatches/{d.id}/acknowledge", data={"once": "abcdefgh"})
    assert resp.status_code == 403
    assert "安全令牌" in resp.text
    forged = client.post(f"/console/dispatches/{d.id}/note",
                         data={"csrf": "forged", "text": "hello"})
    assert forged.status_code == 403
    d.reload()
    assert d.status == "delivered"
    assert not d.notes


def test_another_stations_dispatch_and_bad_ids_are_pages_not_500s(client, county, officer):
    file(client, county, 1, township=1)
    theirs = Dispatch.objects(station_code="530627-NT").first()
    resp = client.get(f"/console/dispatches/{theirs.id}")
    assert resp.status_code == 403
    assert "其他派出所" in resp.text
    for bad in ("not-an-objectid", "0" * 24, "<script>alert(1)</script>"):
        resp = client.get(f"/console/dispatches/{bad}")
        assert resp.status_code == 404, bad
        assert "没有找到这条线索" in resp.text
        assert "<script>alert(1)" not in resp.text
    csrf = hidden(client.get("/console/inbox").text)
    resp = client.post(f"/console/dispatches/{theirs.id}/acknowledge", data={"csrf": csrf})
    assert resp.status_code == 403
    assert Dispatch.objects(id=theirs.id).first().status == "delivered"


def test_notes_too_long_are_refused_and_html_is_escaped(client, county, officer):
    [code] = file(client, county, 1)
    d = Dispatch.objects(report_code=code).first()
    url = f"/console/dispatches/{d.id}"
    csrf = hidden(client.get(url).text)
    huge = client.post(url + "/note", data={"csrf": csrf, "text": "长" * 100_000})
    assert huge.status_code == 413
    assert "太长" in huge.text
    long = client.post(url + "/note", data={"csrf": csrf, "text": "x" * 2001})
    assert long.status_code == 422
    assert "最多2000字" in long.text
    blank = client.post(url + "/note", data={"csrf": csrf, "text": "   "})
    assert blank.status_code == 422
    script = '<script>alert("note")</script><b>bold</b>'
    ok = client.post(url + "/note", data={"csrf": csrf, "text": script})
    assert ok.status_code == 303
    page = client.get(url).text
    assert "&lt;script&gt;alert(&#34;note&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold</b>" not in page
    assert len(Dispatch.objects(id=d.id).first().notes) == 1


def test_a_transfer_to_a_station_that_does_not_exist_changes_nothing(client, county, officer):
    [code] = file(client, county, 1)
    d = Dispatch.objects(report_code=code).first()
    url = f"/console/dispatches/{d.id}"
    csrf = hidden(client.get(url).text)
    resp = client.post(url + "/transfer", data={"csrf": csrf, "to_station": "999999-XX",
                                                "reason": "不在本辖区"})
    assert resp.status_code == 422
    assert "没有这个派出所" in resp.text
    assert Dispatch.objects(id=d.id).first().status == "delivered"


def test_idle_sessions_end_and_polling_does_not_keep_them_alive(client, settings, officer):
    sid = client.get_cookie("sg_console", path="/console/").value
    key = sessions._key(sid)
    redis_store.conn.expire(key, 5)
    assert client.get("/console/inbox/rows").status_code == 200
    assert redis_store.conn.ttl(key) <= 5  # the page's own refreshing: not a click
    assert client.get("/console/inbox").status_code == 200
    assert redis_store.conn.ttl(key) > 5  # a click: the idle clock starts again
    redis_store.conn.delete(key)  # as Redis does when the idle time is up
    page = client.get("/console/inbox")
    assert page.status_code == 303
    assert page.headers["Location"].endswith("/console/login?expired=1")
    assert "登录已过期" in client.get(page.headers["Location"]).text
    late = client.post("/console/logout", data={"csrf": "whatever"})
    assert late.status_code == 401
    assert "登录已过期" in late.text
    poll = client.get("/console/inbox/rows", headers={"X-Console-Script": "1"})
    assert poll.status_code == 401
    assert poll.json["login"] == "/console/login"


def test_logout_ends_the_session(client, officer):
    csrf = hidden(client.get("/console/inbox").text)
    sid = client.get_cookie("sg_console", path="/console/").value
    out = client.post("/console/logout", data={"csrf": csrf})
    assert out.status_code == 303
    assert redis_store.conn.get(sessions._key(sid)) is None
    client.set_cookie("sg_console", sid, path="/console/")
    assert client.get("/console/inbox").status_code == 303


def test_console_pages_have_a_strict_policy_of_their_own(client, officer):
    for path in ("/console/login", "/console/inbox", "/console/map"):
        resp = client.get(path)
        policy = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "http" not in policy
        assert "frame-ancestors 'none'" in policy
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Cache-Control"] == "no-store"
    assert client.get("/console/static/console.js").status_code == 200
    assert client.get("/console/assets/leaflet/1.9.3/leaflet.js").status_code == 200
    assert client.get("/console/assets/leaflet/1.9.3/leaflet-src.esm.js").status_code == 404


def test_the_tile_server_is_the_one_origin_the_map_may_add(settings):
    from gateway.console.site import console_csp

    policy = console_csp(settings.with_(map_tiles_url="https://tiles.gongan.example/{z}/{x}/{y}.png"))
    assert "img-src 'self' data: https://tiles.gongan.example" in policy
    assert "script-src 'self';" in policy


def test_an_officer_sees_another_page_refused_to_their_role(client, officer):
    resp = client.get("/console/county")
    assert resp.status_code == 403


def test_the_map_data_is_the_stations_cells_and_open_clues(client, county, officer):
    file(client, county, 2)
    data = client.get("/console/map/data").json
    cells = [f for f in data["features"] if f["properties"]["kind"] == "cell"]
    marks = [f for f in data["features"] if f["properties"]["kind"] == "dispatch"]
    assert len(cells) == 16
    assert {f["properties"]["station"] for f in cells} == {WF}
    assert len(marks) == 2
    assert {f["properties"]["priority"] for f in marks} == {"critical"}


def test_the_supervisor_sees_the_countys_overdue_clues(client, county, log_in):
    codes = file(client, county, 2, township=1)
    Dispatch.objects(report_code=codes[0]).update(set__ack_deadline=dt.datetime(2020, 1, 1))
    assert log_in(SUPERVISOR).status_code == 303
    page = client.get("/console/county")
    assert page.status_code == 200
    overdue = page.text[page.text.index('id="overdue-table"'):page.text.index('id="stations-h"')]
    assert codes[0] in overdue
    assert codes[1] not in overdue
    assert 'id="insight"' in page.text
    assert client.get("/console/inbox").status_code == 403


def test_an_alert_is_issued_and_ended_from_the_supervisors_page(client, county, log_in):
    from gateway.alerts.records import Alert
    from gateway.sample import cell_code

    assert log_in(SUPERVISOR).status_code == 303
    page = client.get("/console/county").text
    form = form_of(page, "/console/county/alerts")
    bad = client.post("/console/county/alerts", data={**form, "sex": "male", "age_years": "40",
                                                       "grid_code": cell_code(0, 0, 0)})
    assert bad.status_code == 422
    assert "age_years" in bad.text
    assert Alert.objects.count() == 0
    form = form_of(client.get("/console/county").text, "/console/county/alerts")
    ok = client.post("/console/county/alerts", data={
        **form, "sex": "female", "age_years": "6", "clothing": "<i>红上衣</i>",
        "grid_code": cell_code(0, 0, 0), "place": "城关车站"})
    assert ok.status_code == 303, ok.text
    alert = Alert.objects.get()
    page = client.get("/console/county").text
    assert alert.code in page
    assert "&lt;i&gt;红上衣&lt;/i&gt;" in page
    cover = client.get(f"/console/alerts/{alert.code}/coverage")
    assert cover.status_code == 200
    assert cover.json["properties"]["alert"] == alert.code
    found = form_of(page, f"/console/county/alerts/{alert.code}/found")
    assert client.post(f"/console/county/alerts/{alert.code}/found", data=found).status_code == 303
    assert Alert.objects.get().status == "found"
    again = client.post(f"/console/county/alerts/{alert.code}/found",
                        data={**found, "once": "second-click-xyz"})
    assert again.status_code == 409
    assert client.get("/console/alerts/12ab/coverage").status_code == 404


def test_nt_officer_and_unknown_pages_get_pages(client, log_in):
    assert log_in(NT_OFFICER).status_code == 303
    assert client.get("/console/nowhere").status_code == 404


def test_the_language_switch_is_remembered_in_the_session_and_the_browser(client, officer):
    inbox = client.get("/console/inbox")
    assert '<html lang="zh-Hans">' in inbox.text
    assert "本所线索" in inbox.text
    switched = client.post("/console/language", data={
        "csrf": hidden(inbox.text), "language": "en", "next": "/console/inbox"})
    assert switched.status_code == 303
    assert switched.headers["Location"] == "/console/inbox"
    page = client.get("/console/inbox").text
    assert '<html lang="en">' in page
    assert "Station inbox" in page
    assert "本所线索" not in page
    assert client.get("/console/dispatches/nothing-here").text.count("No such clue.") == 1
    client.delete_cookie("sg_console", path="/console/")
    assert "Police login" in client.get("/console/login").text  # the cookie remembers
    refused = client.post("/console/language", data={"language": "zh"})
    assert refused.status_code == 403
    away = client.post("/console/language", data={
        "csrf": hidden(client.get("/console/login").text), "language": "zh",
        "next": "//evil.example/console/"})
    assert away.headers["Location"] == "/console/"


def test_break_glass_needs_a_reason_and_shows_the_reporter_once_audited(client, county, officer):
    from gateway.privacy.audit import AuditEntry

    [code] = file(client, county, 1)
    d = Dispatch.objects(report_code=code).first()
    url = f"/console/dispatches/{d.id}"
    page = client.get(url).text
    assert "记入审计日志" in page  # the warning before the button
    csrf = hidden(page)
    short = client.post(url + "/unseal", data={"csrf": csrf, "reason": "why", "understood": "yes"})
    assert short.status_code == 422
    reason = "核实举报人所述的车辆信息"
    unticked = client.post(url + "/unseal", data={"csrf": csrf, "reason": reason})
    assert unticked.status_code == 422
    assert AuditEntry.objects(action="report.unseal").count() == 0
    shown = client.post(url + "/unseal", data={"csrf": csrf, "reason": "核实举报人所述的车辆信息",
                                                "understood": "yes"})
    assert shown.status_code == 200
    assert "张秀英" in shown.text
    assert "+8613800001001" in shown.text
    assert shown.headers["Cache-Control"] == "no-store"
    assert AuditEntry.objects(action="report.unseal").count() == 1
    assert "张秀英" not in client.get(url).text  # shown once, not kept on the page


def test_a_transfer_is_offered_then_accepted_by_the_other_station(client, county, log_in):
    [code] = file(client, county, 1)
    d = Dispatch.objects(report_code=code, station_code=WF).first()
    assert log_in(WF_OFFICER).status_code == 303
    url = f"/console/dispatches/{d.id}"
    form = form_of(client.get(url).text, url + "/transfer")
    sent = client.post(url + "/transfer", data={**form, "to_station": "530627-NT",
                                                "reason": "<b>南台辖区</b>"})
    assert sent.status_code == 303
    assert log_in(NT_OFFICER).status_code == 303
    inbox = client.get("/console/inbox").text
    transfers = inbox[inbox.index('id="transfers"'):inbox.index('id="open-h"')]
    assert code in transfers
    page = client.get(url).text
    assert "&lt;b&gt;南台辖区&lt;/b&gt;" in page
    accept = form_of(page, url + "/accept-transfer")
    assert client.post(url + "/accept-transfer", data=accept).status_code == 303
    assert Dispatch.objects(id=d.id).first().station_code == "530627-NT"
    assert client.post(url + "/accept-transfer", data=accept).status_code == 409


def test_unsealing_beyond_the_limit_is_a_page_and_audited(settings, county):
    from gateway.app import create_app
    from gateway.privacy.audit import AuditEntry
    from tests.gateway.api.test_reports_api import run_jobs

    app = create_app(settings.with_(rate_limit_unseal="1/day"))
    client = app.test_client()
    headers = auth(token_of(county, "reporter 张秀英"))
    resp = client.post("/api/v1/reports", headers=headers, json={
        "client_id": "console-unseal-0001", "category": "CHILD", "grid_code": "530627001001001"})
    assert resp.status_code == 201
    run_jobs()
    d = Dispatch.objects(report_code=resp.json["code"], station_code=WF).first()
    form = client.get("/console/login")
    assert client.post("/console/login", data={
        "csrf": hidden(form.text), "phone": WF_OFFICER, "password": county.password,
        "otp": enrol(WF_OFFICER).now()}).status_code == 303
    url = f"/console/dispatches/{d.id}/unseal"
    body = {"csrf": hidden(client.get(f"/console/dispatches/{d.id}").text),
            "reason": "核实举报人所述的车辆信息", "understood": "yes"}
    assert client.post(url, data=body).status_code == 200
    over = client.post(url, data=body)
    assert over.status_code == 429
    assert "操作过于频繁" in over.text
    assert "张秀英" not in over.text
    assert AuditEntry.objects(action="report.unseal").count() == 1
    assert AuditEntry.objects(action="report.unseal_refused").count() == 1


def test_a_refused_transfer_goes_back_with_its_reason(client, county, log_in):
    [code] = file(client, county, 1)
    d = Dispatch.objects(report_code=code, station_code=WF).first()
    assert log_in(WF_OFFICER).status_code == 303
    url = f"/console/dispatches/{d.id}"
    form = form_of(client.get(url).text, url + "/transfer")
    assert client.post(url + "/transfer", data={**form, "to_station": "530627-NT",
                                                "reason": "南台辖区"}).status_code == 303
    assert log_in(NT_OFFICER).status_code == 303
    reject = form_of(client.get(url).text, url + "/reject-transfer")
    blank = client.post(url + "/reject-transfer", data={**reject, "reason": " "})
    assert blank.status_code == 422
    reject = form_of(client.get(url).text, url + "/reject-transfer")
    done = client.post(url + "/reject-transfer", data={**reject, "reason": "<i>不在本所辖区</i>"})
    assert done.status_code == 303
    assert done.headers["Location"] == "/console/inbox"
    assert client.get(url).status_code == 403  # no longer offered to 南台
    assert log_in(WF_OFFICER).status_code == 303
    page = client.get(url).text
    assert "&lt;i&gt;不在本所辖区&lt;/i&gt;" in page
    assert Dispatch.objects(id=d.id).first().status == "delivered"


def test_the_supervisors_map_is_the_county_and_an_officer_gets_no_alert_coverage(
        client, county, log_in):
    assert log_in(NT_OFFICER).status_code == 303
    assert client.get("/console/alerts/123456/coverage").status_code == 403
    assert log_in(SUPERVISOR).status_code == 303
    data = client.get("/console/map/data").json
    assert len([f for f in data["features"] if f["properties"]["kind"] == "cell"]) == 48
    assert client.get("/console/alerts/123456/coverage").status_code == 404


def test_the_supervisor_sees_escalations_and_cancels_an_alert_with_a_reason(
        client, county, log_in):
    from gateway.alerts.records import Alert
    from gateway.sample import cell_code

    [code] = file(client, county, 1, township=2)
    Dispatch.objects(report_code=code, station_code="530627-PJ").update(
        set__escalation_level=2)
    assert log_in(SUPERVISOR).status_code == 303
    page = client.get("/console/county").text
    escalated = page[page.index('id="escalated"'):page.index('id="alerts-h"')]
    assert code in escalated
    form = form_of(page, "/console/county/alerts")
    assert client.post("/console/county/alerts", data={
        **form, "sex": "male", "age_years": "4", "grid_code": cell_code(2, 0, 0)}
    ).status_code == 303
    alert = Alert.objects.get()
    page = client.get("/console/county").text
    cancel = form_of(page, f"/console/county/alerts/{alert.code}/cancel")
    blank = client.post(f"/console/county/alerts/{alert.code}/cancel",
                        data={**cancel, "reason": ""})
    assert blank.status_code == 422
    assert Alert.objects.get().status == "active"
    cancel = form_of(client.get("/console/county").text,
                     f"/console/county/alerts/{alert.code}/cancel")
    done = client.post(f"/console/county/alerts/{alert.code}/cancel",
                       data={**cancel, "reason": "家长已联系上孩子"})
    assert done.status_code == 303
    assert Alert.objects.get().status == "cancelled"
    assert client.post("/console/county/alerts/not-a-code/found",
                       data={**cancel, "once": "x-123456"}).status_code == 404
