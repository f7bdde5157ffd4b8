"""The settings this process runs with, and the routing rules and escalation policy they name."""

from __future__ import annotations

from gateway.settings import Settings
from grid.escalation import EscalationPolicy
from grid.rules import RoutingRules

_settings: list[Settings] = []
_rules: list[RoutingRules] = []
_policy: list[EscalationPolicy] = []


def bind(settings: Settings) -> None:
    """Make `settings`, its routing rules and its escalation policy this process's.

    Called by `gateway.startup.configure`, which also binds the stores and empties
    the caches of the rooms above.
    """
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
        raise RuntimeError("SafeGrid is not configured: call create_app() or startup.configure()")
    return _settings[0]


def rules() -> RoutingRules:
    """The routing rules this process was configured with."""
    if not _rules:
        raise RuntimeError("SafeGrid is not configured: call create_app() or startup.configure()")
    return _rules[0]


def escalation() -> EscalationPolicy:
    """Deadlines and the escalation chain this process was configured with."""
    if not _policy:
        raise RuntimeError("SafeGrid is not configured: call create_app() or startup.configure()")
    return _policy[0]
