"""The sample county, loaded into a benchmark's own stores, with this process configured on them."""

from __future__ import annotations

from gateway import startup
from gateway.sample import SampleCounty


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
