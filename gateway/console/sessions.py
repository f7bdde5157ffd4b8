"""Console sessions: kept in Redis, only a random id in the browser's cookie.

The cookie is `HttpOnly`, `SameSite=Strict`, `Secure` behind TLS, and limited to
/console/. Redis holds the session under the SHA-256 of its id (a copy of Redis
gives no usable cookie), with who is logged in, the CSRF token and the language.
A session ends after `console_idle_s` without a click (each page or form touches
it; the inbox's own refreshing does not) and after `console_session_max_s` in any
case. Logging out deletes it at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, replace

from gateway.access.tokens import Principal
from gateway.extensions import redis_store
from gateway.settings import Settings

COOKIE = "sg_console"
COOKIE_PATH = "/console/"
KEY = "safegrid:console:session:{digest}"


@dataclass(frozen=True)
class ConsoleSession:
    """Who is logged in to the console, and what their pages need to know."""

    role: str
    subject_id: str
    station_code: str | None
    county_code: str | None
    csrf: str
    language: str
    started: float

    @property
    def principal(self) -> Principal:
        """The same principal a bearer token of this person stands for (audit, visibility)."""
        return Principal(self.role, self.subject_id, self.station_code, self.county_code)


def _key(session_id: str) -> str:
    return KEY.format(digest=hashlib.sha256(session_id.encode("utf-8")).hexdigest())


def start(config: Settings, role: str, subject_id: str, station_code: str | None,
          county_code: str | None, language: str) -> tuple[str, ConsoleSession]:
    """A new session for someone who just logged in: (the cookie's id, the session)."""
    session_id = secrets.token_urlsafe(32)
    session = ConsoleSession(role, subject_id, station_code, county_code,
                             secrets.token_urlsafe(32), language, time.time())
    redis_store.conn.set(_key(session_id), json.dumps(asdict(session)), ex=config.console_idle_s)
    return session_id, session


def load(config: Settings, session_id: str | None, touch: bool) -> ConsoleSession | None:
    """The live session of this id, or None (unknown, idle too long, or too old).

    `touch` restarts the idle clock: a person's click does, the page's polling not.
    """
    if not session_id or len(session_id) > 100:
        return None
    key = _key(session_id)
    raw = redis_store.conn.get(key)
    if raw is None:
        return None
    session = ConsoleSession(**json.loads(raw))
    if time.time() - session.started > config.console_session_max_s:
        redis_store.conn.delete(key)
        return None
    if touch:
        redis_store.conn.expire(key, config.console_idle_s)
    return session


def save_language(config: Settings, session_id: str, session: ConsoleSession,
                  language: str) -> ConsoleSession:
    """The session with its language changed (kept for the rest of it)."""
    changed = replace(session, language=language)
    redis_store.conn.set(_key(session_id), json.dumps(asdict(changed)), ex=config.console_idle_s)
    return changed


def end(session_id: str | None) -> None:
    """Log out: the session is gone at once."""
    if session_id:
        redis_store.conn.delete(_key(session_id))


def first_time(marker: str, ttl_s: int = 24 * 3600) -> bool:
    """True the first time a form's one-off `marker` is sent; False for a second submission."""
    if not marker or len(marker) > 100:
        return False
    key = "safegrid:console:form:" + hashlib.sha256(marker.encode("utf-8")).hexdigest()
    return bool(redis_store.conn.set(key, "1", nx=True, ex=ttl_s))
