"""Bearer tokens for reporters, officers, supervisors and admins (minimal; hardened later).

A token is random, shown once when issued, and stored only as its SHA-256.
Each process caches token → principal for `token_cache_s` seconds, which keeps
app intake at one database round trip per report. A revocation still takes
effect at once in every process: `revoke_tokens` bumps a revocation epoch in
Redis, and a cached principal is used only while the epoch is the one it was
cached under (one Redis GET per cache hit). If Redis cannot answer, the cache
is trusted for its usual `token_cache_s` (intake must not stop for Redis).
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
from redis.exceptions import RedisError

from gateway.extensions import client_address, redis_store
from gateway.records.tokens import ApiToken
from gateway.runtime import settings
from grid.documents import utcnow

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_PREFIX = "sg_"  # noqa: S105 - a prefix that marks SafeGrid tokens, not a secret
REVOCATION_EPOCH_KEY = "safegrid:tokens:revocation_epoch"
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


def revocation_epoch() -> bytes | None:
    """The shared revocation epoch (None when Redis cannot say: the cache's TTL rules then)."""
    try:
        epoch = redis_store.conn.get(REVOCATION_EPOCH_KEY)
    except RedisError as exc:
        log.warning("token revocation epoch unreadable, trusting the token cache: %s", exc)
        return None
    return epoch if isinstance(epoch, bytes) else b"0"


def revoked_everywhere() -> None:
    """Tell every process that tokens were revoked: their cached principals are stale."""
    token_cache.clear()
    try:
        redis_store.conn.incr(REVOCATION_EPOCH_KEY)
    except RedisError as exc:  # the revocation stands; other caches expire in token_cache_s
        log.error("could not publish a token revocation: %s", exc)


def revoke_tokens(subject_id: str | ObjectId) -> int:
    """Revoke every token of a person (logins, refresh and service tokens), in every process
    at once; returns how many were live."""
    count = int(ApiToken.objects(subject_id=ObjectId(subject_id), revoked=False)
                .update(set__revoked=True))
    revoked_everywhere()
    return count


class _TokenCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal | None, bytes | None]] = {}

    def get(self, key: str) -> tuple[bool, Principal | None]:
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        epoch = revocation_epoch()
        if epoch is not None and epoch != hit[2]:
            return False, None  # something was revoked since: ask the database again
        return True, hit[1]

    def put(self, key: str, principal: Principal | None, ttl: float,
            epoch: bytes | None = None) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl, principal, epoch)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


token_cache = _TokenCache()


def principal_for(token: str, cache_s: float) -> Principal | None:
    """The principal a token stands for, or None when unknown or revoked."""
    key = hash_token(token)
    hit, principal = token_cache.get(key)
    if hit:
        return principal
    # Read before the database, so a revocation in between is not cached as live.
    epoch = revocation_epoch() if cache_s > 0 else None
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
    token_cache.put(key, principal, cache_s, epoch)
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
