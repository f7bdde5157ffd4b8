"""SMS provider adapters: the small interface every gateway (Kannel first) implements.

Errors follow RapidPro's split: a `SendError` is either fatal (retrying cannot
help: bad credentials, a rejected number) or retryable (timeouts, 5xx), so RQ
jobs retry only what is worth retrying.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

DeliveryStatus = Literal["delivered", "failed", "sent", "buffered", "rejected"]


@dataclass(frozen=True)
class InboundSms:
    """One mobile-originated message as the gateway handed it over.

    `message_id` is the gateway's id: the same message retried by the gateway
    carries the same id, so it is the idempotency key. `received_at` is naive
    UTC. `charset` is the codec the bytes were decoded with (`utf-8`,
    `utf-16-be`), or the declared charset when the text arrived already
    decoded. `coding` is the gateway's data coding as given (Kannel: `0`
    GSM-7, `1` 8-bit, `2` UCS-2). `raw` keeps what the gateway sent (minus
    any shared secret) and, when the payload was bytes, their hex under
    `text_hex`, so nothing is lost even if decoding had to replace characters.
    """

    message_id: str
    sender: str
    receiver: str
    text: str
    received_at: datetime | None
    charset: str | None
    coding: str | None
    smsc: str | None
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundSms:
    """One message to a phone; `ref` is SafeGrid's id for it (used in the DLR URL)."""

    to: str
    text: str
    sender: str | None
    dlr_url: str | None
    ref: str


@dataclass(frozen=True)
class SendResult:
    """The gateway took the message; `provider_id` is its id when it returns one."""

    provider_id: str | None
    status: str


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery report for a message SafeGrid sent, matched by `ref`; `at` is naive UTC."""

    ref: str
    status: DeliveryStatus
    smsc_id: str | None
    answer: str | None
    at: datetime | None = None


class SendError(Exception):
    """Sending failed. `fatal`: do not retry. `reason`: a machine-readable code."""

    def __init__(self, reason: str, *, fatal: bool, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.fatal = fatal


class InboundError(ValueError):
    """An inbound request that cannot be read as an SMS; `reason` is machine-readable.

    Reasons: `missing_parameter`, `bad_parameter`, `undecodable`. The caller
    still stores the raw request for a person to look at (nothing is dropped).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Provider(Protocol):
    """What the gateway jobs and webhook views need from an SMS provider."""

    def send(self, message: OutboundSms) -> SendResult:
        """Hand `message` to the provider; raises SendError."""
        ...

    def parse_inbound(
        self, params: Mapping[str, str], body: bytes | None, content_type: str | None
    ) -> InboundSms:
        """Read a webhook request (query/form params, body) as an SMS; raises InboundError."""
        ...


__all__ = [
    "DeliveryReport",
    "DeliveryStatus",
    "InboundError",
    "InboundSms",
    "OutboundSms",
    "Provider",
    "SendError",
    "SendResult",
]
