"""KannelProvider against a local HTTP server playing smsbox; inbound and DLR parsing.

The server runs on a free loopback port inside the test; nothing leaves the
machine. Real Kannel is exercised in tests/e2e/test_kannel_roundtrip.py.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from deploy.processes import free_port
from sms.providers import (
    DeliveryReport,
    InboundError,
    InboundSms,
    OutboundSms,
    Provider,
    SendError,
    SendResult,
)
from sms.providers.kannel import (
    DLR_MASK,
    DLR_URL_ESCAPES,
    SMS_SERVICE_ESCAPES,
    SMS_SERVICE_GET_URL_TEMPLATE,
    KannelProvider,
    MultiResult,
    dlr_url,
    parse_dlr,
    parse_inbound,
    secret_matches,
    sms_service_get_url,
)

ROOT = Path(__file__).resolve().parents[2]
RECEIPT = "已收到举报R7K3Q9M，已转交城关派出所。"


class FakeSmsbox(ThreadingHTTPServer):
    """Answers every request with `reply` after `delay` seconds and records the query."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.reply: tuple[int, str] = (202, "0: Accepted for delivery")
        self.delay = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: FakeSmsbox

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.requests.append((parts.path, parse_qs(parts.query, keep_blank_values=True)))
        time.sleep(self.server.delay)
        status, body = self.server.reply
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def smsbox() -> Iterator[FakeSmsbox]:
    server = FakeSmsbox(free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def provider_for(server: FakeSmsbox, timeout_s: float = 2.0) -> KannelProvider:
    url = f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/sendsms"
    return KannelProvider(url, "safegrid", "s3cret&pw", "10690000", timeout_s=timeout_s)


def single(query: dict[str, list[str]]) -> dict[str, str]:
    assert all(len(values) == 1 for values in query.values()), query
    return {key: values[0] for key, values in query.items()}


# --- send -------------------------------------------------------------------


@pytest.fixture(params=["send", "prepared"])
def send(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """`KannelProvider.send`, or the same message through `prepare(text).send(to)` (an
    alert batch's way, without a delivery report): the same request, answers, errors."""

    def through(provider: KannelProvider, message: OutboundSms) -> SendResult:
        if request.param == "send":
            return provider.send(message)
        assert message.dlr_url is None
        return provider.prepare(message.text, message.sender).send(message.to)

    return through


def test_chinese_text_goes_as_ucs2_utf8_with_the_dlr_url(smsbox: FakeSmsbox) -> None:
    dlr = dlr_url("http://127.0.0.1:5000/sms/dlr/kannel", "msg-42")
    message = OutboundSms(to="+8613800138000", text=RECEIPT, sender=None, dlr_url=dlr,
                          ref="msg-42")

    result = provider_for(smsbox).send(message)

    assert result == SendResult(provider_id=None, status="accepted")
    [(path, query)] = smsbox.requests
    assert path == "/cgi-bin/sendsms"
    assert single(query) == {
        "username": "safegrid", "password": "s3cret&pw", "from": "10690000",
        "to": "+8613800138000", "text": RECEIPT, "charset": "UTF-8", "coding": "2",
        "dlr-mask": "19",
        "dlr-url": "http://127.0.0.1:5000/sms/dlr/kannel?ref=msg-42"
                   "&status=%d&smsc_id=%F&answer=%A&ts=%T",
    }


def test_gsm7_text_goes_as_coding_0_with_its_own_sender_and_no_dlr(
        send, smsbox: FakeSmsbox) -> None:
    message = OutboundSms(to="13800138000", text="Report R7K3Q9M received £5 {ok}",
                          sender="106900001", dlr_url=None, ref="r1")

    send(provider_for(smsbox), message)

    query = single(smsbox.requests[0][1])
    assert query["coding"] == "0"
    assert query["charset"] == "UTF-8"
    assert query["text"] == "Report R7K3Q9M received £5 {ok}"
    assert query["from"] == "106900001"
    assert "dlr-mask" not in query
    assert "dlr-url" not in query


@pytest.mark.parametrize(("status", "body", "expected"), [
    (202, "0: Accepted for delivery", "accepted"),
    (202, "3: Queued for later delivery", "queued"),
    (202, "Sent.", "accepted"),
])
def test_202_answers_are_success(send, smsbox: FakeSmsbox, status: int, body: str,
                                 expected: str) -> None:
    smsbox.reply = (status, body)
    result = send(provider_for(smsbox), OutboundSms("13800138000", "ok", None, None, "r"))
    assert result.status == expected
    assert result.provider_id is None  # Kannel's sendsms returns no id


@pytest.mark.parametrize(("status", "body", "reason", "fatal"), [
    (403, "Authorization failed for sendsms", "unauthorized", True),
    (403, "Not routable. Do not try again.", "not_routable", True),
    (400, "Missing receiver number, rejected", "rejected", True),
    (400, "Charset or body misformed, rejected", "rejected", True),
    (404, "Unknown service", "client_error", True),
    (429, "slow down", "throttled", False),
    (500, "Sending failed.", "unavailable", False),
    (503, "Temporal failure, try again later.", "unavailable", False),
    (302, "", "unexpected_status", True),
])
def test_error_answers_are_fatal_or_retryable(send, smsbox: FakeSmsbox, status: int,
                                              body: str, reason: str, fatal: bool) -> None:
    smsbox.reply = (status, body)
    with pytest.raises(SendError) as caught:
        send(provider_for(smsbox), OutboundSms("13800138000", "ok", None, None, "r"))
    assert (caught.value.reason, caught.value.fatal) == (reason, fatal)


def test_a_slow_smsbox_is_a_retryable_timeout(send, smsbox: FakeSmsbox) -> None:
    smsbox.delay = 1.0
    started = time.monotonic()
    with pytest.raises(SendError) as caught:
        send(provider_for(smsbox, timeout_s=0.2),
             OutboundSms("13800138000", "ok", None, None, "r"))
    assert (caught.value.reason, caught.value.fatal) == ("timeout", False)
    assert time.monotonic() - started < 0.9


def test_nothing_listening_is_a_retryable_connection_error(send) -> None:
    provider = KannelProvider(f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms", "u", "p", "1")
    with pytest.raises(SendError) as caught:
        send(provider, OutboundSms("13800138000", "ok", None, None, "r"))
    assert (caught.value.reason, caught.value.fatal) == ("connection_error", False)


@pytest.mark.parametrize("to", ["", "138 0013 8000", "13800138000 13900139000", "abc", "+"])
def test_bad_receivers_are_refused_before_any_request(send, smsbox: FakeSmsbox,
                                                      to: str) -> None:
    # Kannel splits `to` on spaces: one bad receiver could message several phones.
    with pytest.raises(SendError) as caught:
        send(provider_for(smsbox), OutboundSms(to, "ok", None, None, "r"))
    assert (caught.value.reason, caught.value.fatal) == ("invalid_receiver", True)
    assert smsbox.requests == []


def test_empty_text_is_refused(send, smsbox: FakeSmsbox) -> None:
    with pytest.raises(SendError) as caught:
        send(provider_for(smsbox), OutboundSms("13800138000", "", None, None, "r"))
    assert caught.value.fatal
    assert smsbox.requests == []


# --- multi-cast: one text, several receivers, one request (an alert's batch) ----------

MANY = ["+8613800000001", "+8613800000002", "+8613800000003"]


def test_one_request_carries_every_receiver_joined_by_spaces(smsbox: FakeSmsbox) -> None:
    result = provider_for(smsbox).prepare("寻人").send_many(MANY)
    assert result == MultiResult(refused=frozenset(), failed=frozenset())
    [(_, query)] = smsbox.requests
    assert single(query)["to"] == " ".join(MANY)  # Kannel splits `to` on spaces


def test_kannels_failed_receivers_are_retried_and_the_rest_were_taken(
        smsbox: FakeSmsbox) -> None:
    # Kannel 1.4.5 hands each receiver to bearerbox in turn and names those it could not.
    smsbox.reply = (500, "Sending failed. Failed receivers are: +8613800000002")
    result = provider_for(smsbox).prepare("寻人").send_many(MANY)
    assert result == MultiResult(refused=frozenset(), failed=frozenset({MANY[1]}))


def test_a_500_naming_nobody_is_a_retry_for_all(smsbox: FakeSmsbox) -> None:
    smsbox.reply = (500, "Sending failed.")
    with pytest.raises(SendError) as caught:
        provider_for(smsbox).prepare("寻人").send_many(MANY)
    assert (caught.value.reason, caught.value.fatal) == ("unavailable", False)


def test_denied_and_invalid_receivers_are_refused_not_retried(smsbox: FakeSmsbox) -> None:
    smsbox.reply = (202, "Sent. Denied receivers are: +8613800000003")
    result = provider_for(smsbox).prepare("寻人").send_many([*MANY, "138 0013", "abc"])
    assert result == MultiResult(refused=frozenset({MANY[2], "138 0013", "abc"}),
                                 failed=frozenset())
    [(_, query)] = smsbox.requests
    assert single(query)["to"] == " ".join(MANY)  # the invalid ones never sent


@pytest.mark.parametrize(("status", "fatal"), [(403, True), (503, False)])
def test_a_refused_request_refuses_every_receiver(smsbox: FakeSmsbox, status: int,
                                                  fatal: bool) -> None:
    smsbox.reply = (status, "Not routable. Do not try again." if status == 403 else "busy")
    with pytest.raises(SendError) as caught:
        provider_for(smsbox).prepare("寻人").send_many(MANY)
    assert caught.value.fatal is fatal


def test_an_injected_session_is_used_and_the_password_is_not_in_repr() -> None:
    class Recorder(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[dict[str, object]] = []

        def get(self, url: str | bytes, **kwargs: object) -> requests.Response:  # type: ignore[override]
            self.calls.append({"url": url, **kwargs})
            response = requests.Response()
            response.status_code = 202
            response._content = b"0: Accepted for delivery"
            return response

    session = Recorder()
    provider = KannelProvider("http://kannel.invalid/cgi-bin/sendsms", "u", "pw-123", "1",
                              timeout_s=3.5, session=session)
    provider.send(OutboundSms("13800138000", "ok", None, None, "r"))
    [call] = session.calls
    assert call["timeout"] == 3.5
    assert call["allow_redirects"] is False
    assert "pw-123" not in repr(provider)
    typed: Provider = provider  # KannelProvider satisfies the Protocol
    assert typed is provider


# --- parse_inbound ----------------------------------------------------------

REPORT_ZH = "举报 拐卖儿童 村东头\n新来的外地媳妇不让出门"


def test_get_with_hex_ucs2_is_decoded_and_keeps_the_bytes() -> None:
    hex_text = REPORT_ZH.encode("utf-16-be").hex().upper()
    params = {"secret": "shh", "id": "9388e0a6-6a2c-4b97-b09b-acfdd97b5883",
              "from": "+8613800138000", "to": "10690000", "hex": hex_text, "coding": "2",
              "charset": "UTF-16BE", "ts": "1795446384", "smsc": "carrier"}

    sms = parse_inbound(params, None, None)

    assert sms == InboundSms(
        message_id="9388e0a6-6a2c-4b97-b09b-acfdd97b5883", sender="+8613800138000",
        receiver="10690000", text=REPORT_ZH, received_at=datetime(2026, 11, 23, 15, 6, 24),
        charset="utf-16-be", coding="2", smsc="carrier",
        raw={key: value for key, value in params.items() if key != "secret"}
        | {"text_hex": hex_text},
    )
    assert "secret" not in sms.raw


def test_get_with_hex_gsm7_and_the_provider_method() -> None:
    params = {"id": "a1", "from": "13800138001", "to": "10690000",
              "hex": b"1 1 110105003012 boy taken".hex().upper(), "coding": "0",
              "charset": "UTF-8", "ts": "2026-11-23 15:06:26"}
    sms = KannelProvider("http://x.invalid/", "u", "p", "1").parse_inbound(params, b"", None)
    assert sms.text == "1 1 110105003012 boy taken"
    assert sms.charset == "utf-8"
    assert sms.received_at == datetime(2026, 11, 23, 15, 6, 26)
    assert sms.smsc is None


def test_get_with_plain_text_as_percent_a_gives_it() -> None:
    sms = parse_inbound({"id": "a2", "from": "13800138001", "text": "R 1 @110105003012 孩子",
                         "ts": "2026-11-23+15:06:26"}, None, None)
    assert sms.text == "R 1 @110105003012 孩子"
    assert sms.received_at == datetime(2026, 11, 23, 15, 6, 26)


def test_ucs2_as_plain_text_is_refused_rather_than_guessed() -> None:
    with pytest.raises(InboundError) as caught:
        parse_inbound({"id": "a3", "from": "1", "text": "N>b\x00", "coding": "2"}, None, None)
    assert caught.value.reason == "undecodable"


def test_post_ucs2_body_with_x_kannel_headers() -> None:
    params = {"id": "b1", "x-kannel-from": "+8613800138000", "x-kannel-to": "10690000",
              "x-kannel-time": "2026-11-23 15:06:24", "x-kannel-smsc": "carrier",
              "x-kannel-coding": "2"}
    body = REPORT_ZH.encode("utf-16-be")

    sms = parse_inbound(params, body, 'text/plain; charset="UTF-16BE"')

    assert (sms.sender, sms.receiver, sms.text) == ("+8613800138000", "10690000", REPORT_ZH)
    assert sms.received_at == datetime(2026, 11, 23, 15, 6, 24)
    assert (sms.smsc, sms.coding, sms.charset) == ("carrier", "2", "utf-16-be")
    assert sms.raw["text_hex"] == body.hex().upper()


def test_post_header_names_in_any_case_and_utf8_body() -> None:
    params = {"id": "b2", "X-Kannel-From": "13800138000", "X-Kannel-To": "10690000"}
    sms = parse_inbound(params, "帮助".encode(), "text/plain; charset=UTF-8")
    assert (sms.sender, sms.text, sms.charset) == ("13800138000", "帮助", "utf-8")


def test_an_unknown_charset_falls_back_and_keeps_the_bytes() -> None:
    body = "S 402913 在车站看到".encode("utf-16-be")
    sms = parse_inbound({"id": "c1", "from": "1", "coding": "2"}, body,
                        "text/plain; charset=x-no-such-charset")
    assert sms.text == "S 402913 在车站看到"
    assert sms.raw["decode_problem"] == "unknown_charset"
    assert sms.raw["text_hex"] == body.hex().upper()


def test_undecodable_bytes_are_replaced_not_raised() -> None:
    data = b"R 1 \xff\xfe\xc3 boy"
    sms = parse_inbound({"id": "c2", "from": "1", "hex": data.hex(), "charset": "UTF-8",
                         "coding": "0"}, None, None)
    assert sms.text == "R 1 \ufffd\ufffd\ufffd boy"
    assert sms.raw["decode_problem"] == "replaced"
    assert bytes.fromhex(sms.raw["text_hex"]) == data


def test_odd_ucs2_bytes_are_replaced_not_raised() -> None:
    data = "孩子".encode("utf-16-be") + b"\x4e"
    sms = parse_inbound({"id": "c3", "from": "1", "hex": data.hex(), "coding": "2",
                         "charset": "UTF-16BE"}, None, None)
    assert sms.text.startswith("孩子")
    assert sms.raw["decode_problem"] == "replaced"


def test_8bit_binary_is_kept_as_hex() -> None:
    sms = parse_inbound({"id": "c4", "from": "1", "coding": "1", "charset": "8-BIT",
                         "hex": "0B05040B8423F0"}, None, None)
    assert sms.raw["text_hex"] == "0B05040B8423F0"
    assert sms.raw["decode_problem"] == "binary"
    assert parse_inbound({"id": "c5", "from": "1"}, b"\x01\x02",
                         "application/octet-stream").raw["decode_problem"] == "binary"


def test_an_empty_message_is_still_a_message() -> None:
    sms = parse_inbound({"id": "c6", "from": "1", "hex": "", "coding": "0"}, None, None)
    assert sms.text == ""


@pytest.mark.parametrize("params", [
    {"from": "13800138000", "hex": "41"},
    {"id": "", "from": "13800138000", "hex": "41"},
    {"id": "d1", "hex": "41"},
    {"id": "d1", "from": "  ", "hex": "41"},
])
def test_missing_id_or_sender(params: dict[str, str]) -> None:
    with pytest.raises(InboundError) as caught:
        parse_inbound(params, None, None)
    assert caught.value.reason == "missing_parameter"
    assert isinstance(caught.value, ValueError)


def test_hex_that_is_not_hex_is_undecodable() -> None:
    with pytest.raises(InboundError) as caught:
        parse_inbound({"id": "d2", "from": "1", "hex": "4E3Zb"}, None, None)
    assert caught.value.reason == "undecodable"


@pytest.mark.parametrize("ts", ["", "-1", "yesterday", "99999999999999999999"])
def test_a_bad_timestamp_is_no_reason_to_refuse(ts: str) -> None:
    assert parse_inbound({"id": "d3", "from": "1", "ts": ts}, None, None).received_at is None


# --- DLR ----------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [
    ("1", "delivered"), ("2", "failed"), ("4", "buffered"), ("8", "sent"), ("16", "rejected"),
])
def test_dlr_types(code: str, status: str) -> None:
    report = parse_dlr({"ref": "msg-42", "status": code, "smsc_id": "06bdfa4a",
                        "answer": "id:06bdfa4a stat:DELIVRD err:000", "ts": "1795446414"})
    assert report == DeliveryReport(ref="msg-42", status=status, smsc_id="06bdfa4a",  # type: ignore[arg-type]
                                    answer="id:06bdfa4a stat:DELIVRD err:000",
                                    at=datetime(2026, 11, 23, 15, 6, 54))


def test_dlr_with_empty_kannel_fields() -> None:
    report = KannelProvider("http://x.invalid/", "u", "p", "1").parse_dlr(
        {"ref": "r", "status": "1", "smsc_id": "", "answer": "", "ts": ""})
    assert (report.smsc_id, report.answer, report.at) == (None, None, None)


@pytest.mark.parametrize(("params", "reason"), [
    ({"status": "1"}, "missing_parameter"),
    ({"ref": "r"}, "missing_parameter"),
    ({"ref": "r", "status": "%d"}, "bad_parameter"),
    ({"ref": "r", "status": "3"}, "bad_parameter"),
    ({"ref": "r", "status": "32"}, "bad_parameter"),
])
def test_bad_dlrs(params: dict[str, str], reason: str) -> None:
    with pytest.raises(InboundError) as caught:
        parse_dlr(params)
    assert caught.value.reason == reason


# --- URLs and config ------------------------------------------------------------


def test_get_url_carries_every_field_parse_inbound_needs() -> None:
    url = sms_service_get_url("http://127.0.0.1:8000/sms/inbound/kannel", "s3cret")
    assert url == ("http://127.0.0.1:8000/sms/inbound/kannel?secret=s3cret"
                   "&id=%I&from=%p&to=%P&hex=%e&coding=%c&charset=%C&ts=%T&smsc=%i")
    escapes = set(re.findall(r"%[A-Za-z]", url))
    assert escapes <= set(SMS_SERVICE_ESCAPES)
    assert set(re.findall(r"%[A-Za-z]", dlr_url("http://h/d", "r"))) <= set(DLR_URL_ESCAPES)
    assert SMS_SERVICE_GET_URL_TEMPLATE.startswith("{inbound_url}")
    assert DLR_MASK == 1 + 2 + 16


def test_literal_percent_signs_are_doubled_for_kannel() -> None:
    # Kannel would read %2F as the escape %2 followed by F; %% is its literal %.
    url = sms_service_get_url("https://sg.example/in?x=1", "a/b c%")
    assert url.startswith("https://sg.example/in?x=1&secret=a%%2Fb%%20c%%25&id=%I")
    assert dlr_url("http://h/dlr", "ref/1").startswith("http://h/dlr?ref=ref%%2F1&status=%d")
    assert dlr_url("http://h/dlr", "r", secret="a&b%").endswith("&ts=%T&secret=a%%26b%%25")


@pytest.mark.parametrize("url", ["ftp://x/in", "http://x/in#frag", 'http://x/"in', "http://x/%41",
                                 "http://x/ in"])
def test_urls_that_would_break_kannel_conf_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        sms_service_get_url(url, "s")


def test_secret_matches() -> None:
    assert secret_matches({"secret": "s3"}, "s3")
    assert not secret_matches({"secret": "s4"}, "s3")
    assert not secret_matches({}, "s3")
    assert not secret_matches({"secret": ""}, "")


def test_the_production_config_uses_the_same_get_url() -> None:
    conf = (ROOT / "deploy/kannel/kannel.conf").read_text()
    [line] = [ln for ln in conf.splitlines() if ln.startswith("get-url")]
    expected = sms_service_get_url("https://safegrid.CHANGE-ME.example/sms/inbound/kannel",
                                   "CHANGE-ME-inbound-secret")
    assert line == f'get-url = "{expected}"'
    template = (ROOT / "deploy/kannel/test.conf.template").read_text()
    assert 'get-url = "{get_url}"' in template
    assert "dlr-storage = redis" in conf
    # Everything Kannel listens on is bound to loopback.
    for key in ("admin-interface", "smsbox-interface", "sendsms-interface"):
        assert f"{key} = 127.0.0.1" in conf
        assert f"{key} = 127.0.0.1" in template
