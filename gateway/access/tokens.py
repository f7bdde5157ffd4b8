"""Bearer tokens for reporters, officers, supervisors and admins (minimal; hardened later).

A token is random, shown once when issued, and stored only as its SHA-256.
Each process caches token → principal for `token_cache_s` seconds, which keeps
app intake at one database round trip per report. Revoking still takes effect
at once: whoever revokes calls `revoked()`, which publishes on
`REVOKED_CHANNEL`, and every process listening there (a daemon thread)
forgets its cached tokens. Should Redis be away, a process notices within
`token_cache_s` seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bson import ObjectId
from flask import current_app, g, request
from flask_smorest import abort

from gateway.extensions import client_address, redis_store
from gateway.records.tokens import ApiToken
from gateway.runtime import settings
from grid.documents import utcnow

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_PREFIX = "sg_"  # noqa: S105 - a prefix that marks SafeGrid tokens, not a secret
REVOKED_CHANNEL = "safegrid:tokens:revoked"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is calling, and the scope their role gives them."""

    role: str
    subject_id: str | None
    station_code: str | None
    county_code: str | None
    label: str | None = None  # who holds a token with no person record (admin, auditor)

    @property
    def actor(self) -> str:
        """Who acted, for the audit log: the role and the person (or the token's holder)."""
        return f"{self.role}:{self.subject_id or self.label or 'unnamed'}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    role: str,
    *,
    subject_id: str | ObjectId | None = None,
    station_code: str | None = None,
    county_code: str | None = None,
    label: str | None = None,
    kind: str = "service",
    lifetime_s: int | None = None,
    family: str | None = None,
) -> str:
    """Create a token and return it in clear; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if lifetime_s is None and kind == "service":
        lifetime_s = settings().service_token_days * 86400
    ApiToken(
        token_hash=hash_token(token),
        role=role,
        subject_id=ObjectId(subject_id) if subject_id else None,
        station_code=station_code,
        county_code=county_code,
        label=label,
        kind=kind,
        family=family,
        expires_at=utcnow() + dt.timedelta(seconds=lifetime_s) if lifetime_s else None,
    ).save(force_insert=True)
    return token


class _TokenCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        # Bumped by clear(): a lookup that began before a revocation is not cached.
        self.generation = 0
        self.listener: threading.Thread | None = None

    def get(self, key: str) -> tuple[bool, Principal | None]:
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: str, principal: Principal | None, ttl: float, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return  # tokens were revoked since this lookup read the store
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1


token_cache = _TokenCache()


def revoked() -> None:
    """Tokens were just revoked in the store: forget cached ones here and in every process."""
    token_cache.clear()
    try:
        redis_store.conn.publish(REVOKED_CHANNEL, "1")
    except Exception as exc:  # noqa: BLE001 - Redis away: other processes' caches expire
        log.warning("could not announce a token revocation (%s); other processes notice "
                    "within token_cache_s", exc)


def revoke_tokens(subject_id: str | ObjectId) -> int:
    """Revoke every token of a person (logins, refresh and service tokens), in every process
    at once; returns how many were live."""
    count = int(ApiToken.objects(subject_id=ObjectId(subject_id), revoked=False)
                .update(set__revoked=True))
    revoked()
    return count


def revoke_family(family: str) -> int:
    """Revoke every token of one login (its access and refresh tokens), in every process at
    once; returns how many were live."""
    count = int(ApiToken.objects(family=family, revoked=False).update(set__revoked=True))
    revoked()
    return count


def _listen() -> None:
    """Forget every cached token whenever a process announces a revocation."""
    while True:
        try:
            pubsub = redis_store.conn.pubsub()
            pubsub.subscribe(REVOKED_CHANNEL)
            for message in pubsub.listen():
                # On (re)subscribing too: announcements made while not subscribed were missed.
                if message.get("type") in {"subscribe", "message"}:
                    token_cache.clear()
        except Exception as exc:  # noqa: BLE001 - Redis away: cached tokens still expire
            log.warning("token revocation listener lost Redis (%s); retrying in 5 s", exc)
            time.sleep(5.0)


def _ensure_listener() -> None:
    listener = token_cache.listener
    if listener is None or not listener.is_alive():
        token_cache.listener = threading.Thread(target=_listen, name="token-revocations",
                                                daemon=True)
        token_cache.listener.start()


def principal_for(token: str, cache_s: float) -> Principal | None:
    """The principal a token stands for, or None when unknown or revoked."""
    key = hash_token(token)
    hit, principal = token_cache.get(key)
    if hit:
        return principal
    if cache_s > 0:
        _ensure_listener()
    generation = token_cache.generation
    doc = ApiToken.objects(token_hash=key, revoked=False, kind__ne="refresh").only(
        "role", "subject_id", "station_code", "county_code", "expires_at", "label"
    ).first()
    principal = None
    if doc is not None and doc.expires_at is not None:
        left = (doc.expires_at - utcnow()).total_seconds()
        if left <= 0:
            doc = None  # expired
        else:
            cache_s = min(cache_s, left)  # never cached past its expiry
    if doc is not None:
        principal = Principal(
            role=doc.role,
            subject_id=str(doc.subject_id) if doc.subject_id else None,
            station_code=doc.station_code,
            county_code=doc.county_code,
            label=None if doc.subject_id else doc.label,
        )
    token_cache.put(key, principal, cache_s, generation)
    return principal


def _unauthorised(message: str) -> None:
    abort(401, message=message, headers={"WWW-Authenticate": 'Bearer realm="safegrid"'})


def require(*roles: str) -> Callable[[F], F]:
    """Allow only callers holding a valid token of one of `roles` (deny by default)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if not header:
                _unauthorised("missing Authorization header: send 'Authorization: Bearer <token>'")
            if scheme.lower() != "bearer" or not token.strip():
                _unauthorised("malformed Authorization header: expected 'Bearer <token>'")
            principal = principal_for(token.strip(), current_app.config["SAFEGRID"].token_cache_s)
            if principal is None:
                _unauthorised("unknown, expired or revoked token")
            assert principal is not None
            if principal.role not in roles:
                abort(403, message=f"role '{principal.role}' may not do this")
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def current_principal() -> Principal:
    principal: Principal = g.principal
    return principal


def request_principal() -> Principal | None:
    """Who this request's bearer token stands for (None without a valid one).

    For code that runs before the view's own check (rate-limit keys).
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return principal_for(token.strip(), current_app.config["SAFEGRID"].token_cache_s)


def per_person() -> str:
    """The rate-limit key of a person: their token's principal, else the client's address."""
    who = request_principal()
    if who is not None and (who.subject_id or who.label):
        return who.actor
    return client_address()
