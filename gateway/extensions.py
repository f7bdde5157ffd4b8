"""Extensions, created unbound here and bound to an app in `create_app`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mongoengine
import redis
from flask_smorest import Api

if TYPE_CHECKING:
    from gateway.settings import Settings

api = Api()


class RedisHolder:
    """Holds the process's Redis connection; bound by `runtime.configure`."""

    def __init__(self) -> None:
        self._conn: redis.Redis | None = None

    def bind(self, conn: redis.Redis) -> None:
        self._conn = conn

    @property
    def conn(self) -> redis.Redis:
        if self._conn is None:
            raise RuntimeError("Redis is not bound: call create_app() or runtime.configure() first")
        return self._conn


redis_store = RedisHolder()


def connect_db(settings: Settings) -> None:
    """Connect mongoengine's default alias to `settings.mongodb_uri` (once per process)."""
    mongoengine.disconnect()
    # Short server selection so /readyz answers 503 quickly when the store is down.
    mongoengine.connect(
        host=settings.mongodb_uri,
        uuidRepresentation="standard",
        tz_aware=False,
        serverSelectionTimeoutMS=3000,
    )


def ensure_indexes() -> None:
    """Create every collection's indexes (idempotent; run at start-up)."""
    from gateway.audit import AuditEntry
    from gateway.documents import ALL_DOCUMENTS
    from grid.documents import Case, Dispatch, GridCell, Station
    from sms.records import ALL_DOCUMENTS as SMS_DOCUMENTS

    for doc in (*ALL_DOCUMENTS, *SMS_DOCUMENTS, Station, GridCell, Dispatch, Case, AuditEntry):
        doc.ensure_indexes()
