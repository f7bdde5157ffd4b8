"""The whole SMS stack the e2e tests share: real Kannel (bearerbox + smsbox) with fakesmsc as
the carrier, gunicorn and the RQ lanes as `make run` starts them, all on the test's stores.

`start_sms_app` starts it on a `Stack` (stopped by the caller); `Handset` reads what the
carrier received, by phone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from deploy.processes import FakeSmsc, Stack, app_env, free_port

SECRET = "e2e-kannel-secret"
SHORT_CODE = "10690110"


@dataclass
class SmsApp:
    stack: Stack
    carrier: FakeSmsc
    base_url: str  # gunicorn's, e.g. http://127.0.0.1:41234
    env: dict[str, str]


def start_sms_app(stack: Stack, settings: Any, *, web_workers: int = 1, threads: int = 4,
                  route_workers: int = 1, **extra_env: str) -> SmsApp:
    """Kannel, gunicorn (its inbound URL wired to Kannel), the lanes, then the carrier."""
    web_port = free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    kannel = stack.kannel(f"{base_url}/sms/inbound/kannel", SECRET, default_sender=SHORT_CODE)
    env = app_env(
        settings.mongodb_uri, settings.redis_url, settings.data_keys,
        SAFEGRID_SMS_ENABLED="1", SAFEGRID_SMS_WEBHOOK_SECRET=SECRET,
        SAFEGRID_KANNEL_SENDSMS_URL=kannel.sendsms_url,
        SAFEGRID_KANNEL_USERNAME=kannel.username, SAFEGRID_KANNEL_PASSWORD=kannel.password,
        SAFEGRID_SMS_SENDER=SHORT_CODE, SAFEGRID_PUBLIC_BASE_URL=base_url, **extra_env,
    )
    stack.gunicorn(env, port=web_port, workers=web_workers, threads=threads)
    stack.lanes(env, route_workers=route_workers)
    return SmsApp(stack, stack.fakesmsc(kannel), base_url, env)


class Handset:
    """Every MT fakesmsc received, by receiver (Kannel may keep or strip the +)."""

    def __init__(self, carrier: FakeSmsc) -> None:
        self.carrier = carrier
        self.seen: list[tuple[str, str, str, str]] = []

    def texts_to(self, phone: str, want: int, timeout: float = 30.0) -> list[str]:
        digits = phone.lstrip("+")
        deadline = time.monotonic() + timeout
        while True:
            mine = [text for _, to, _, text in self.seen if to.lstrip("+") == digits]
            if len(mine) >= want or time.monotonic() > deadline:
                break
            self.seen += self.carrier.read_mt(timeout=1.0)
        assert len(mine) >= want, f"{phone} got {len(mine)} of {want}; all MTs: {self.seen}"
        return mine
