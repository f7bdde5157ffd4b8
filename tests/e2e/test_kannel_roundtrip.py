"""End to end through a real Kannel: fakesmsc (the carrier) ⇄ bearerbox ⇄ smsbox ⇄ HTTP.

MOs typed into fakesmsc reach a small HTTP server the test runs (standing in
for SafeGrid's webhook) through the production sms-service get-url and are
read back with `parse_inbound`; MTs sent with `KannelProvider.send` come out
of fakesmsc decoded, and their delivery reports come back to the dlr-url.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from deploy.processes import FakeSmsc, KannelPorts, Stack, free_port
from sms.providers import OutboundSms, SendResult
from sms.providers.kannel import KannelProvider, dlr_url, parse_dlr, secret_matches

pytestmark = pytest.mark.e2e

SECRET = "e2e/secret 42%"  # characters Kannel would otherwise read as escapes
SHORT_CODE = "10690000"
REPORTER = "+8613800138000"
TEACHER = "13800138001"
REPORT_ZH = "举报 拐卖儿童 村东头\n新来的外地媳妇不让出门+"
RECEIPT_ZH = "已收到举报R7K3Q9M，已转交城关派出所。咨询 +86-10-110"
RECEIPT_EN = "Report R7K3Q9M received, passed to Chengguan station. Reply H for help"


@dataclass(frozen=True)
class Call:
    path: str
    params: dict[str, str]


class Webhook(ThreadingHTTPServer):
    """Records every request; answers 200 with an empty body (503 for the first `fail`)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.fail = 0

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [c for c in self.calls if c.path == path]
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{len(got)} of {count} calls to {path} within {timeout} s: {got}")


class _Handler(BaseHTTPRequestHandler):
    server: Webhook
    protocol_version = "HTTP/1.1"  # Kannel keeps connections alive

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        # Decoded the way Flask/werkzeug decodes a query: UTF-8, bad bytes replaced.
        call = Call(parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)))
        with self.server.lock:
            self.server.calls.append(call)
            failing = self.server.fail > 0
            self.server.fail -= 1
        self.send_response(503 if failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def listening_hosts(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a socket listening on `port`."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            host, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                hosts.add(host)
    return hosts


@pytest.fixture
def gateway(tmp_path) -> Iterator[tuple[KannelPorts, FakeSmsc, Webhook]]:
    webhook = Webhook(free_port())
    thread = threading.Thread(target=webhook.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    stack = Stack(tmp_path / "logs")
    try:
        base = f"http://127.0.0.1:{webhook.server_address[1]}"
        kannel = stack.kannel(f"{base}/sms/inbound/kannel", SECRET, default_sender=SHORT_CODE)
        fake = stack.fakesmsc(kannel)
        yield kannel, fake, webhook
    finally:
        stack.stop()
        webhook.shutdown()
        webhook.server_close()


def test_mo_in_chinese_and_digits_then_mt_in_chinese_and_ascii(gateway) -> None:
    kannel, fake, webhook = gateway
    provider = KannelProvider(kannel.sendsms_url, kannel.username, kannel.password,
                              kannel.default_sender)

    fake.send_mo(REPORTER, SHORT_CODE, REPORT_ZH, ucs2=True)
    fake.send_mo(TEACHER, SHORT_CODE, "1 1 110105003012 boy taken into van", ucs2=False)

    calls = webhook.wait_for("/sms/inbound/kannel", 2)
    assert all(secret_matches(call.params, SECRET) for call in calls)
    inbound = {sms.sender: sms for sms in
               (provider.parse_inbound(call.params, b"", None) for call in calls)}
    assert set(inbound) == {REPORTER, TEACHER}
    zh, digits = inbound[REPORTER], inbound[TEACHER]
    assert zh.text == REPORT_ZH  # line break and '+' kept: the hex survives any web framework
    assert (zh.receiver, zh.coding, zh.charset, zh.smsc) == (SHORT_CODE, "2", "utf-16-be", "fake")
    assert digits.text == "1 1 110105003012 boy taken into van"
    assert (digits.coding, digits.charset) == ("0", "utf-8")
    assert zh.message_id != digits.message_id
    assert len(zh.message_id) == 36  # Kannel's UUID
    for sms in (zh, digits):
        assert sms.received_at is not None
        assert abs(time.time() - sms.received_at.timestamp() + time.timezone) < 120
        assert "decode_problem" not in sms.raw

    dlr_base = f"http://127.0.0.1:{webhook.server_address[1]}/sms/dlr/kannel"
    sent = [
        provider.send(OutboundSms(REPORTER, RECEIPT_ZH, None,
                                  dlr_url(dlr_base, "mt/zh 1", secret=SECRET), "mt/zh 1")),
        provider.send(OutboundSms(TEACHER, RECEIPT_EN, None,
                                  dlr_url(dlr_base, "mt-en-2", secret=SECRET), "mt-en-2")),
    ]
    assert sent == [SendResult(None, "accepted")] * 2

    mts = fake.read_mt(timeout=10, count=2)
    assert sorted(mts) == sorted([
        (SHORT_CODE, REPORTER, "ucs-2", RECEIPT_ZH),
        (SHORT_CODE, TEACHER, "text", RECEIPT_EN),
    ])

    dlr_calls = webhook.wait_for("/sms/dlr/kannel", 2)
    assert all(secret_matches(call.params, SECRET) for call in dlr_calls)
    reports = [parse_dlr(call.params) for call in dlr_calls]
    assert sorted((r.ref, r.status) for r in reports) == [("mt-en-2", "delivered"),
                                                           ("mt/zh 1", "delivered")]
    assert all(r.smsc_id for r in reports)  # fakesmsc's "SMSC id" is Kannel's UUID


def test_kannel_listens_on_loopback_only(gateway) -> None:
    kannel, _, _ = gateway
    for port in (kannel.admin_port, kannel.smsbox_port, kannel.smsc_port, kannel.sendsms_port):
        assert listening_hosts(port) == {"0100007F"}, port  # 127.0.0.1, nothing else


def test_smsbox_retries_a_failed_webhook_call_with_the_same_message_id(gateway) -> None:
    _, fake, webhook = gateway
    webhook.fail = 1  # SafeGrid briefly unavailable

    fake.send_mo(REPORTER, SHORT_CODE, "帮助", ucs2=True)

    first, retry = webhook.wait_for("/sms/inbound/kannel", 2, timeout=15)
    assert first.params == retry.params  # same id: SafeGrid stores the report once
    assert retry.params["id"]
