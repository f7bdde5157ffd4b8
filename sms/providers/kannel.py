"""Kannel (bearerbox + smsbox) as SafeGrid's SMS gateway.

Outbound: smsbox's HTTP sendsms interface (`/cgi-bin/sendsms`). Inbound: an
smsbox `sms-service` whose get-url calls SafeGrid with Kannel's escape codes
filled in (`SMS_SERVICE_GET_URL_TEMPLATE`). Delivery reports: the `dlr-url`
passed with each message (`DLR_URL_TEMPLATE`).

What Kannel 1.4.5 (Debian) really does, checked against its source and a live
bearerbox/smsbox/fakesmsc:

- `%b` and `%a` put the message bytes URL-encoded into the URL. For a UCS-2
  message those are UTF-16BE bytes, which a web framework decodes as UTF-8
  (with replacement) before we ever see them. `%e` gives the bytes as hex,
  which survives any framework; with `%c` (coding) and `%C` (charset:
  `UTF-8`, `UTF-16BE` or `8-BIT`) we decode them ourselves.
- Every `%` in a get-url or dlr-url is an escape, so a literal `%` (say in a
  percent-encoded secret) must be written `%%`.
- sendsms answers 202 `0: Accepted for delivery` / `3: Queued for later
  delivery` (or `Sent.` with `immediate-sendsms-reply`), 403 `Authorization
  failed for sendsms` or `Not routable. Do not try again.`, 400 for bad
  fields, 500 `Sending failed.` (bearerbox gone), 503 `Temporal failure`.
  It returns no message id, so `SendResult.provider_id` is None; match
  delivery reports by the `ref` put into the dlr-url.
- `to` is split on spaces (one message per number): a receiver with a space
  would fan out, so receivers are checked here before sending. Several
  receivers of one text in one request (`PreparedText.send_many`, an alert's
  batch) are a multi-cast: 202 with ` Denied receivers are: …` appended for
  those Kannel's white/black lists refused, or 500 `Sending failed. Failed
  receivers are: …` naming the ones bearerbox did not take (the others were
  taken).
- smsbox acknowledges an MO to bearerbox as soon as it *starts* the get-url
  request; retries of a failed request (`http-request-retry`) live only in
  smsbox's memory. The webhook must answer 2xx only after storing, and
  smsbox's retry settings decide how long SafeGrid may be down.
"""

from __future__ import annotations

import codecs
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import requests
import urllib3

from sms.encoding import coding as sms_coding
from sms.providers import (
    DeliveryReport,
    DeliveryStatus,
    InboundError,
    InboundSms,
    OutboundSms,
    SendError,
    SendResult,
)

# The sms-service get-url. `{inbound_url}` and `{secret}` are filled by
# `sms_service_get_url`; the `%x` are Kannel's escape codes (see
# SMS_SERVICE_ESCAPES). The text travels as hex (`%e`) so UCS-2 bytes survive.
SMS_SERVICE_GET_URL_TEMPLATE: Final = (
    "{inbound_url}{sep}secret={secret}"
    "&id=%I&from=%p&to=%P&hex=%e&coding=%c&charset=%C&ts=%T&smsc=%i"
)

# Escape codes Kannel fills in an sms-service get-url/post-url (urltrans.c).
SMS_SERVICE_ESCAPES: Final[Mapping[str, str]] = MappingProxyType({
    "%I": "Kannel's id of the message (UUID); the same on smsbox's own retries",
    "%p": "the sender's phone number (the reporter)",
    "%P": "the number the message was sent to (SafeGrid's short code)",
    "%q": "like %p, with a leading 00 turned into +",
    "%e": "the message bytes as upper-case hex",
    "%b": "the message bytes, URL-encoded (UTF-16BE bytes for UCS-2)",
    "%a": "all words of the message joined by +, URL-encoded (loses line breaks)",
    "%k": "the first word (the keyword)",
    "%c": "coding: 0 GSM-7 (text in UTF-8 inside Kannel), 1 8-bit binary, 2 UCS-2",
    "%C": "charset of the bytes: UTF-8, UTF-16BE or 8-BIT",
    "%t": "time received, 'YYYY-MM-DD+HH:MM:SS' UTC",
    "%T": "time received, UNIX seconds",
    "%i": "smsc-id of the connection it came in on",
    "%u": "UDH, URL-encoded",
    "%U": "UDH as hex",
    "%n": "the sms-service name",
    "%%": "a literal %",
})

# dlr-mask 19 = 1 delivered + 2 failed + 16 rejected by the SMSC: the final
# outcomes. 4 (buffered) and 8 (accepted by the SMSC) would double the callbacks.
DLR_MASK: Final = 19

# The dlr-url sent with each message; `{dlr_url}` and `{ref}` are filled by
# `dlr_url()`, the `%x` by Kannel when the report arrives.
DLR_URL_TEMPLATE: Final = "{dlr_url}{sep}ref={ref}&status=%d&smsc_id=%F&answer=%A&ts=%T"

# Escape codes Kannel fills in a dlr-url when a delivery report arrives.
DLR_URL_ESCAPES: Final[Mapping[str, str]] = MappingProxyType({
    "%d": "report type: 1 delivered, 2 failed, 4 buffered, 8 accepted by SMSC, 16 rejected by SMSC",
    "%A": "the SMSC's answer, URL-encoded (SMPP: 'id:… stat:DELIVRD err:000 …'; may be empty)",
    "%F": "the SMSC's own id of the message (foreign id)",
    "%T": "time of the report, UNIX seconds",
    "%t": "time of the report, 'YYYY-MM-DD+HH:MM:SS' UTC",
    "%i": "smsc-id of the connection that reported",
    "%I": "Kannel's id (UUID) of the report message",
    "%n": "the sendsms-user that sent the message",
    "%%": "a literal %",
})

_DLR_TYPES: Final[Mapping[int, DeliveryStatus]] = MappingProxyType({
    1: "delivered",
    2: "failed",
    4: "buffered",
    8: "sent",
    16: "rejected",
})

# Kannel's sendsms-chars default is "0123456789 +-"; a space means "several
# receivers", so only an optional + and digits are let through.
_RECEIVER: Final = re.compile(r"\+?[0-9]{3,20}")
# Characters that would break a quoted value in kannel.conf or start an escape.
_CONF_UNSAFE: Final = re.compile(r'["%\s#]')
_CONTENT_TYPE_CHARSET: Final = re.compile(r"""charset\s*=\s*"?([^";\s]+)"?""", re.IGNORECASE)
# Python has no codec named UCS-2; for SMS it is UTF-16BE without surrogates.
_CHARSET_ALIASES: Final[Mapping[str, str]] = MappingProxyType({
    "ucs-2": "utf-16-be",
    "ucs2": "utf-16-be",
    "iso-10646-ucs-2": "utf-16-be",
    "utf-16be": "utf-16-be",
})
_BINARY: Final = "8-BIT"
_SECRET_PARAM: Final = "secret"  # noqa: S105 - the parameter name, not a secret


def _kannel_literal(value: str) -> str:
    """`value` URL-quoted, with `%` doubled so Kannel copies it instead of expanding it."""
    return quote(value, safe="").replace("%", "%%")


def _check_base_url(url: str, what: str) -> None:
    if not url.startswith(("http://", "https://")) or _CONF_UNSAFE.search(url):
        raise ValueError(f"{what} must be an http(s) URL without quotes, spaces, # or %")


def sms_service_get_url(inbound_url: str, secret: str) -> str:
    """The get-url for kannel.conf's sms-service: SafeGrid's inbound URL with Kannel escapes."""
    _check_base_url(inbound_url, "inbound_url")
    if not secret:
        raise ValueError("the shared secret must not be empty")
    return SMS_SERVICE_GET_URL_TEMPLATE.format(
        inbound_url=inbound_url, sep="&" if "?" in inbound_url else "?",
        secret=_kannel_literal(secret),
    )


def dlr_url(base_url: str, ref: str, secret: str | None = None) -> str:
    """The dlr-url for one message: Kannel calls it with the report, `ref` identifies it.

    Pass the webhook secret as `secret` rather than inside `base_url`: here it
    is URL-quoted and its `%` doubled, as Kannel needs.
    """
    _check_base_url(base_url, "base_url")
    url = DLR_URL_TEMPLATE.format(
        dlr_url=base_url, sep="&" if "?" in base_url else "?", ref=_kannel_literal(ref)
    )
    return url if secret is None else f"{url}&{_SECRET_PARAM}={_kannel_literal(secret)}"


def secret_matches(params: Mapping[str, str], secret: str) -> bool:
    """True when the request carries the shared secret (compared in constant time)."""
    given = params.get(_SECRET_PARAM, "")
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


class KannelProvider:
    """Send through smsbox's sendsms interface; read smsbox's sms-service and DLR calls."""

    def __init__(
        self,
        sendsms_url: str,
        username: str,
        password: str,
        default_sender: str,
        timeout_s: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        self.sendsms_url = sendsms_url
        self.username = username
        self._password = password
        self.default_sender = default_sender
        self.timeout_s = timeout_s
        self._session = session if session is not None else requests.Session()
        self._pool: urllib3.PoolManager | None = None

    def __repr__(self) -> str:  # never print the password
        return f"KannelProvider({self.sendsms_url!r}, username={self.username!r})"

    def send(self, message: OutboundSms) -> SendResult:
        """Submit `message`; GSM-7 text as coding 0, anything else as UCS-2 (coding 2).

        A timeout is retryable although Kannel may already have taken the
        message: a rare duplicate SMS beats a lost receipt.
        """
        if not _RECEIVER.fullmatch(message.to):
            raise SendError("invalid_receiver", fatal=True)
        if not message.text:
            raise SendError("empty_text", fatal=True)
        ucs2 = sms_coding(message.text) == "ucs2"
        params = {
            "username": self.username,
            "password": self._password,
            "from": message.sender or self.default_sender,
            "to": message.to,
            "text": message.text,
            "charset": "UTF-8",  # what requests encodes the text in; Kannel recodes
            "coding": "2" if ucs2 else "0",
        }
        if message.dlr_url:
            params["dlr-mask"] = str(DLR_MASK)
            params["dlr-url"] = message.dlr_url
        try:
            resp = self._session.get(self.sendsms_url, params=params, timeout=self.timeout_s,
                                     allow_redirects=False)
        except requests.Timeout as exc:
            raise SendError("timeout", fatal=False, detail=type(exc).__name__) from exc
        except requests.ConnectionError as exc:
            raise SendError("connection_error", fatal=False, detail=type(exc).__name__) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise SendError("bad_config", fatal=True, detail=type(exc).__name__) from exc
        except requests.RequestException as exc:
            raise SendError("request_error", fatal=False, detail=type(exc).__name__) from exc
        return _classify(resp.status_code, resp.text)

    def prepare(self, text: str, sender: str | None = None) -> PreparedText:
        """One text for many receivers, no delivery report (an alert's batch): the query
        is encoded once, and each `send(to)` costs a request on a shared connection pool
        (about a sixth of the CPU `send` spends through requests). Thread-safe."""
        if self._pool is None:
            self._pool = urllib3.PoolManager(maxsize=16)
        parts = urlsplit(self.sendsms_url)
        query = urlencode({
            "username": self.username,
            "password": self._password,
            "from": sender or self.default_sender,
            "text": text,
            "charset": "UTF-8",
            "coding": "2" if sms_coding(text) == "ucs2" else "0",
        })
        base = parts._replace(query=f"{parts.query}&{query}" if parts.query else query,
                              fragment="").geturl()
        return PreparedText(self._pool, base, bool(text), self.timeout_s)

    def parse_inbound(
        self, params: Mapping[str, str], body: bytes | None, content_type: str | None
    ) -> InboundSms:
        """See `parse_inbound`."""
        return parse_inbound(params, body, content_type)

    def parse_dlr(self, params: Mapping[str, str]) -> DeliveryReport:
        """See `parse_dlr`."""
        return parse_dlr(params)


class PreparedText:
    """A text ready for sendsms (`KannelProvider.prepare`); `send(to)` submits it to one
    receiver, with the same answers and errors as `KannelProvider.send`."""

    def __init__(self, pool: urllib3.PoolManager, base_url: str, has_text: bool,
                 timeout_s: float) -> None:
        self._pool = pool
        self._base_url = base_url
        self._has_text = has_text
        self._timeout = urllib3.Timeout(total=timeout_s)

    def send(self, to: str) -> SendResult:
        if not _RECEIVER.fullmatch(to):
            raise SendError("invalid_receiver", fatal=True)
        if not self._has_text:
            raise SendError("empty_text", fatal=True)
        return _classify(*self._get(to))

    def _get(self, to: str) -> tuple[int, str]:
        """One sendsms request to `to` (one receiver, or several joined by spaces):
        (status, answer); a request that got no answer raises SendError."""
        try:
            resp = self._pool.request("GET", f"{self._base_url}&to={quote_plus(to)}",
                                      timeout=self._timeout, retries=False, redirect=False)
        except (urllib3.exceptions.NewConnectionError,  # (a ConnectTimeoutError in urllib3)
                urllib3.exceptions.ProtocolError) as exc:
            raise SendError("connection_error", fatal=False, detail=type(exc).__name__) from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise SendError("timeout", fatal=False, detail=type(exc).__name__) from exc
        except (urllib3.exceptions.LocationValueError,
                urllib3.exceptions.URLSchemeUnknown) as exc:
            raise SendError("bad_config", fatal=True, detail=type(exc).__name__) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise SendError("request_error", fatal=False, detail=type(exc).__name__) from exc
        return resp.status, resp.data.decode("utf-8", "replace")

    def send_many(self, receivers: Sequence[str]) -> MultiResult:
        """Submit the text to several receivers in one request (Kannel's multi-cast: one
        message each). Raises SendError when the request as a whole failed (nothing was
        taken, or — a 5xx without Kannel's list — nothing known to be: the caller tries
        them all again)."""
        if not self._has_text:
            raise SendError("empty_text", fatal=True)
        refused = {to for to in receivers if not _RECEIVER.fullmatch(to)}
        wanted = [to for to in receivers if to not in refused]
        if not wanted:
            return MultiResult(frozenset(refused), frozenset())
        status, body = self._get(" ".join(wanted))
        if status == 500 and len(wanted) > 1:
            failed = _receivers_named(body, "Failed receivers are:") & set(wanted)
            if failed:  # the rest were handed to bearerbox
                return MultiResult(frozenset(refused), frozenset(failed))
        _classify(status, body)  # raises for an answer that is not a 2xx
        refused |= _receivers_named(body, "Denied receivers are:") & set(wanted)
        return MultiResult(frozenset(refused), frozenset())


@dataclass(frozen=True)
class MultiResult:
    """What became of each receiver of a multi-cast: `refused` (an invalid number, or
    denied by Kannel's lists: do not retry), `failed` (not taken: try again); every other
    receiver was accepted."""

    refused: frozenset[str]
    failed: frozenset[str]


def _receivers_named(body: str, marker: str) -> set[str]:
    """The receivers Kannel lists after `marker` in a multi-cast answer, as given."""
    at = body.find(marker)
    if at < 0:
        return set()
    return {word for word in body[at + len(marker):].split() if _RECEIVER.fullmatch(word)}


def _classify(status: int, body: str) -> SendResult:
    """A sendsms HTTP answer as a SendResult, or the SendError it means."""
    answer = body.strip()[:200]
    if 200 <= status < 300:
        return SendResult(None, "queued" if answer.startswith("3:") else "accepted")
    if status in (408, 429):  # a proxy in front of Kannel asking us to come back later
        raise SendError("throttled", fatal=False, detail=f"{status} {answer}")
    if status == 403:
        reason = "unauthorized" if answer.startswith("Authorization failed") else "not_routable"
        raise SendError(reason, fatal=True, detail=answer)
    if status == 400:
        raise SendError("rejected", fatal=True, detail=answer)
    if 400 <= status < 500:
        raise SendError("client_error", fatal=True, detail=f"{status} {answer}")
    if status >= 500:
        raise SendError("unavailable", fatal=False, detail=f"{status} {answer}")
    # 1xx/3xx: the URL points somewhere that is not smsbox; retrying will not fix it.
    raise SendError("unexpected_status", fatal=True, detail=str(status))


def _first(params: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = params.get(name)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _parse_time(value: str | None) -> datetime | None:
    """UNIX seconds (%T) or 'YYYY-MM-DD HH:MM:SS' UTC (%t, X-Kannel-Time) as naive UTC."""
    if not value:
        return None
    value = value.strip()
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC).replace(tzinfo=None)
        return datetime.strptime(value.replace("+", " "), "%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return None  # a bad timestamp is no reason to refuse a report


def _codec_for(charset: str | None, coding: str | None) -> tuple[str, str | None]:
    """(Python codec, problem) for the declared charset and coding; falls back, never raises."""
    fallback = "utf-16-be" if coding == "2" else "utf-8"
    if charset is None or charset.upper() == _BINARY:
        # 8-bit binary has no charset; show it as UTF-8 with replacements, keep the hex.
        return fallback, None if charset is None else "binary"
    name = _CHARSET_ALIASES.get(charset.lower(), charset)
    try:
        return codecs.lookup(name).name, None
    except LookupError:
        return fallback, "unknown_charset"


def _decode(data: bytes, charset: str | None, coding: str | None,
            raw: dict[str, str]) -> tuple[str, str]:
    """(text, codec used). Undecodable bytes become U+FFFD; `raw` keeps the hex and why."""
    codec, problem = _codec_for(charset, coding)
    raw["text_hex"] = data.hex().upper()
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace")
        problem = problem or "replaced"
    if problem:
        raw["decode_problem"] = problem
    return text, codec


def parse_inbound(
    params: Mapping[str, str], body: bytes | None, content_type: str | None
) -> InboundSms:
    """An smsbox sms-service call as an InboundSms.

    GET (our get-url): `id`, `from`, `to`, `hex`, `coding`, `charset`, `ts`,
    `smsc`; a plain `text` (as `%a` gives it) is accepted for GSM-7 messages.
    POST (post-url): the body is the message, its Content-Type carries the
    charset; X-Kannel-* headers merged into `params` with lower-case names
    (`x-kannel-from`, `x-kannel-to`, `x-kannel-time`, `x-kannel-smsc`,
    `x-kannel-coding`); `id=%I` still comes in the post-url's query.

    Undecodable bytes or an unknown charset do not raise: the text is decoded
    with replacement characters and the bytes are kept as hex in
    `raw["text_hex"]` (a report must never be dropped for its encoding).
    Raises InboundError: `missing_parameter` (no id or sender),
    `undecodable` (hex that is not hex; UCS-2 sent as plain text).
    """
    p = {key.lower(): value for key, value in params.items()}
    message_id = _first(p, "id")
    sender = _first(p, "from", "x-kannel-from")
    if message_id is None:
        raise InboundError("missing_parameter", "id")
    if sender is None:
        raise InboundError("missing_parameter", "from")
    receiver = _first(p, "to", "x-kannel-to") or ""
    coding = _first(p, "coding", "x-kannel-coding")
    charset = _first(p, "charset")
    if content_type:
        if content_type.split(";")[0].strip().lower() == "application/octet-stream":
            charset = _BINARY  # smsbox posts 8-bit messages like this
        elif (found := _CONTENT_TYPE_CHARSET.search(content_type)) is not None:
            charset = found.group(1)
    raw = {key: value for key, value in p.items() if key != _SECRET_PARAM}

    hex_text = p.get("hex")
    used_charset: str | None = charset
    if hex_text is not None:
        try:
            data = bytes.fromhex(hex_text)
        except ValueError as exc:
            raise InboundError("undecodable", "hex is not hexadecimal") from exc
        text, used_charset = _decode(data, charset, coding, raw)
    elif body:
        text, used_charset = _decode(body, charset, coding, raw)
    elif "text" in p:
        # Already text: what %a/%b give for GSM-7 once the web framework decoded
        # it. UCS-2 bytes do not survive that, so refuse rather than guess.
        if coding == "2" or (charset or "").lower().startswith(("utf-16", "ucs")):
            raise InboundError("undecodable", "UCS-2 text must come as hex (%e)")
        text = p["text"]
    else:
        text = ""  # an empty SMS is still a message (the grammar reads it as help)
    return InboundSms(
        message_id=message_id,
        sender=sender,
        receiver=receiver,
        text=text,
        received_at=_parse_time(_first(p, "ts", "x-kannel-time")),
        charset=used_charset,
        coding=coding,
        smsc=_first(p, "smsc", "x-kannel-smsc"),
        raw=raw,
    )


def parse_dlr(params: Mapping[str, str]) -> DeliveryReport:
    """A dlr-url call (`DLR_URL_TEMPLATE`) as a DeliveryReport; raises InboundError."""
    p = {key.lower(): value for key, value in params.items()}
    ref = _first(p, "ref")
    status = _first(p, "status")
    if ref is None or status is None:
        raise InboundError("missing_parameter", "ref" if ref is None else "status")
    try:
        kind = _DLR_TYPES[int(status)]
    except (ValueError, KeyError) as exc:
        raise InboundError("bad_parameter", "status") from exc
    return DeliveryReport(
        ref=ref,
        status=kind,
        smsc_id=_first(p, "smsc_id"),
        answer=_first(p, "answer"),
        at=_parse_time(_first(p, "ts")),
    )


__all__ = [
    "DLR_MASK",
    "MultiResult",
    "PreparedText",
    "DLR_URL_ESCAPES",
    "DLR_URL_TEMPLATE",
    "SMS_SERVICE_ESCAPES",
    "SMS_SERVICE_GET_URL_TEMPLATE",
    "DeliveryReport",
    "KannelProvider",
    "dlr_url",
    "parse_dlr",
    "parse_inbound",
    "secret_matches",
    "sms_service_get_url",
]
