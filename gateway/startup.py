"""Binding a process (web app, RQ worker, cron, CLI) to its settings, and the indexes it needs.

`configure` is what every SafeGrid process does first: the data keys, MongoDB,
Redis, the settings of `gateway.runtime`, and empty caches (grid snapshot,
phone blind-index key, token cache), so a process never answers from another
configuration's state. `ensure_indexes` creates every collection's indexes.
"""

from __future__ import annotations

from gateway import gridcache, runtime
from gateway.access.tokens import token_cache
from gateway.custody import case_links
from gateway.custody.sealed_data import upgrade
from gateway.extensions import connect_db, connect_redis, redis_store
from gateway.privacy import phonebook
from gateway.privacy.audit import AuditEntry
from gateway.privacy.crypto import Keyring, set_keyring
from gateway.records.imports import Import, ImportFile, ImportRows
from gateway.records.people import Officer, Reporter
from gateway.records.reports import Report
from gateway.records.tallies import Tally
from gateway.records.tokens import ApiToken
from gateway.records.units import Unit
from gateway.settings import Settings
from grid.documents import Case, Dispatch, GridCell, Station
from grid.jurisdiction import Generation, Jurisdiction
from sms.records import ALL_DOCUMENTS as SMS_DOCUMENTS

ALL_DOCUMENTS = (Reporter, Officer, Report, ApiToken, Unit, Import, ImportRows, ImportFile,
                 Tally)


def configure(settings: Settings) -> None:
    """Bind this process to `settings`: data keys, MongoDB, Redis, and fresh caches."""
    if not settings.data_keys:
        raise RuntimeError("SAFEGRID_DATA_KEYS is not set: personal data is encrypted at rest "
                           "and needs a key; make one with `safegrid keys generate`")
    set_keyring(Keyring.from_env_value(settings.data_keys))
    connect_db(settings)
    redis_store.bind(connect_redis(settings))
    gridcache.reset()
    phonebook.forget()
    token_cache.clear()
    runtime.bind(settings)


def ensure_indexes() -> None:
    """Create every collection's indexes (idempotent; run at start-up)."""
    upgrade()  # an older database's phone numbers get their blind indexes first
    case_links.upgrade()  # and its cases' report arrays move onto the reports
    for doc in (*ALL_DOCUMENTS, *SMS_DOCUMENTS, Station, GridCell, Dispatch, Case, AuditEntry,
                Jurisdiction, Generation):
        doc.ensure_indexes()
