"""Small helpers shared by tests."""

from __future__ import annotations

from typing import Any

from gateway.sample import SampleCounty
from gateway.settings import Settings
from sms.records import OutboundMessage
from tests.fakes import RecordingServer


def token_of(county: SampleCounty, prefix: str) -> str:
    """The sample token whose holder's description starts with `prefix`."""
    return next(t for who, t in county.tokens.items() if who.startswith(prefix))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cell_centre(ring: list[list[float]]) -> tuple[float, float]:
    """(lat, lon) of the middle of a rectangular cell ring."""
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    return (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2


def with_sms(settings: Settings, sendsms: RecordingServer, webhook: str = "s",
             **more: object) -> Settings:
    """`settings` with SMS on, sending through `sendsms` (tests override `settings` with it)."""
    return settings.with_(sms_enabled=True, sms_webhook_secret=webhook,
                          kannel_sendsms_url=f"{sendsms.url}/cgi-bin/sendsms", **more)


def sms_to(phone: str, **filters: object) -> list[OutboundMessage]:
    """The SMS recorded for `phone` (found by its blind index), oldest first."""
    from gateway.privacy.phonebook import phone_index

    return list(OutboundMessage.objects(to_index=phone_index(phone), **filters)
                .order_by("created_at"))


def texts_to(phone: str, **filters: object) -> list[str]:
    """The clear texts of the SMS recorded for `phone`, oldest first."""
    from gateway.delivery.outbound_sms import message_text

    return [message_text(m) for m in sms_to(phone, **filters)]


def csp(resp: Any) -> dict[str, list[str]]:
    """An answer's Content-Security-Policy, directive → values."""
    out = {}
    for directive in resp.headers["Content-Security-Policy"].split(";"):
        name, *values = directive.split()
        out[name] = values
    return out


def sendsms_messages(sendsms: RecordingServer) -> list[tuple[str, dict[str, str]]]:
    """Every message Kannel's sendsms was asked for: (receiver, request params), one per
    receiver of a multi-cast request (`to` holds several numbers joined by spaces)."""
    return [(to, r.params) for r in sendsms.requests if r.path.endswith("/sendsms")
            for to in r.params.get("to", "").split()]
