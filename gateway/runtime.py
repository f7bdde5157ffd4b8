"""The process's settings and connections, shared by the web app, workers and CLI."""

from __future__ import annotations

from gateway.crypto import Keyring, set_keyring
from gateway.extensions import connect_db, redis_store
from gateway.settings import Settings
from grid.escalation import EscalationPolicy
from grid.rules import RoutingRules

_settings: list[Settings] = []
_rules: list[RoutingRules] = []
_policy: list[EscalationPolicy] = []


def configure(settings: Settings) -> None:
    """Bind this process to `settings`: MongoDB, Redis, and the grid cache."""
    import redis

    from gateway import gridcache, phonebook
    from gateway.auth import token_cache

    if not settings.data_keys:
        raise RuntimeError("SAFEGRID_DATA_KEYS is not set: personal data is encrypted at rest "
                           "and needs a key; make one with `safegrid keys generate`")
    set_keyring(Keyring.from_env_value(settings.data_keys))
    connect_db(settings)
    redis_store.bind(redis.Redis.from_url(settings.redis_url))
    gridcache.reset()
    phonebook.forget()
    token_cache.clear()
    _rules[:] = [RoutingRules.load(settings.routing_rules_file)
                 if settings.routing_rules_file else RoutingRules()]
    _policy[:] = [EscalationPolicy(
        sla_s={"critical": settings.sla_critical_s, "urgent": settings.sla_urgent_s,
               "routine": settings.sla_routine_s},
        step_s=settings.escalation_step_s, repeat_s=settings.escalation_repeat_s)]
    _settings[:] = [settings]


def settings() -> Settings:
    """The settings this process was configured with."""
    if not _settings:
        raise RuntimeError("SafeGrid is not configured: call create_app() or runtime.configure()")
    return _settings[0]


def rules() -> RoutingRules:
    """The routing rules this process was configured with."""
    if not _rules:
        raise RuntimeError("SafeGrid is not configured: call create_app() or runtime.configure()")
    return _rules[0]


def escalation() -> EscalationPolicy:
    """Deadlines and the escalation chain this process was configured with."""
    if not _policy:
        raise RuntimeError("SafeGrid is not configured: call create_app() or runtime.configure()")
    return _policy[0]
