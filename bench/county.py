"""Shared bench code: throwaway stores, a database round-trip counter, the sample county."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pymongo import monitoring

from deploy.processes import Service, Stack
from gateway import startup
from gateway.sample import SampleCounty


class Counter(monitoring.CommandListener):
    """Database commands this process sent (each one a round trip), across threads."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self.lock:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def count_round_trips() -> Counter:
    """A Counter of this process's database commands, registered with pymongo.

    Register before the first MongoClient is made: pymongo gives a client only the
    listeners registered by then."""
    counter = Counter()
    monitoring.register(counter)
    return counter


@dataclass
class Stores:
    """A benchmark's own Redis and SecantusDB (in memory), in `stack`."""

    stack: Stack
    redis: Service
    mongo: Service
    mongo_uri: str
    redis_url: str


@contextmanager
def stores(prefix: str = "safegrid-bench-", database: str = "bench",
           uri_options: str = "") -> Iterator[Stores]:
    """Start a real redis-server and SecantusDB for one benchmark; stop them (and whatever
    else was started in the stack) on the way out. `uri_options`: `?retryWrites=…`."""
    stack = Stack(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        redis = stack.redis()
        mongo = stack.secantus()
        yield Stores(stack, redis, mongo,
                     f"mongodb://127.0.0.1:{mongo.port}/{database}{uri_options}",
                     f"redis://127.0.0.1:{redis.port}/0")
    finally:
        stack.stop()


def load_sample_county(mongo_uri: str, redis_url: str, label: str) -> tuple[SampleCounty, str]:
    """Configure this process on the stores, build the sample county; (county, data keys)."""
    from gateway import gridcache, sample
    from gateway.privacy.crypto import Keyring
    from gateway.settings import Settings
    from gateway.startup import ensure_indexes

    data_keys = f"{label}:{Keyring.generate_key()}"
    startup.configure(Settings(mongodb_uri=mongo_uri, redis_url=redis_url, data_keys=data_keys))
    ensure_indexes()
    county = sample.build()
    gridcache.bump_version()
    return county, data_keys


def insert_grid_workers(phones: Sequence[str], cells: Sequence[str], county: str) -> None:
    """Active grid workers with these numbers (sealed, with their blind index), living in
    `cells` round robin, inserted 5,000 at a time."""
    from gateway.privacy import phonebook
    from gateway.privacy.crypto import keyring
    from gateway.records.people import Reporter

    name = keyring().encrypt("网格员", context="reporter.name")
    for start in range(0, len(phones), 5000):
        Reporter._get_collection().insert_many([
            {"phone": phonebook.seal(phone, phonebook.REPORTER_PHONE),
             "phone_index": phonebook.phone_index(phone), "name": name, "role": "grid_worker",
             "home_cell": cells[i % len(cells)], "county_code": county, "language": "zh",
             "active": True}
            for i, phone in enumerate(phones[start:start + 5000], start)])
