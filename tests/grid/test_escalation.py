"""Acknowledgement deadlines and the escalation chain."""

from __future__ import annotations

import datetime as dt

import pytest

from grid.escalation import (
    CHAIN,
    DEFAULT_REPEAT_S,
    DEFAULT_SLA_S,
    DEFAULT_STEP_S,
    EscalationPolicy,
    deadline,
    next_step,
    overdue,
)
from grid.lifecycle import STATES
from grid.rules import DEFAULT_RULES

T0 = dt.datetime(2025, 3, 1, 8, 0, 0)


def test_every_routing_priority_has_a_deadline() -> None:
    assert DEFAULT_SLA_S == {"critical": 300, "urgent": 1800, "routine": 86400}
    for rule in DEFAULT_RULES.values():
        assert rule.priority in DEFAULT_SLA_S


@pytest.mark.parametrize(
    ("priority", "after"),
    [
        ("critical", dt.timedelta(minutes=5)),
        ("urgent", dt.timedelta(minutes=30)),
        ("routine", dt.timedelta(hours=24)),
    ],
)
def test_default_deadlines(priority: str, after: dt.timedelta) -> None:
    assert deadline(priority, T0) == T0 + after


def test_deadline_with_a_configured_table() -> None:
    assert deadline("critical", T0, {"critical": 60}) == T0 + dt.timedelta(seconds=60)
    policy = EscalationPolicy.from_mapping({"sla_s": {"urgent": 600}})
    assert policy.deadline("urgent", T0) == T0 + dt.timedelta(minutes=10)
    assert policy.deadline("critical", T0) == T0 + dt.timedelta(minutes=5)


def test_deadline_for_an_unknown_priority() -> None:
    with pytest.raises(ValueError, match="unknown priority"):
        deadline("whenever", T0)
    with pytest.raises(ValueError, match="unknown priority"):
        EscalationPolicy().deadline("whenever", T0)


def test_the_chain_climbs_then_repeats_the_top() -> None:
    steps = []
    level = 0
    for _ in range(7):
        level, role, delay = next_step(level)
        steps.append((level, role, delay))
    assert steps == [
        (1, "station_duty_officer", DEFAULT_STEP_S),
        (2, "station_chief", DEFAULT_STEP_S),
        (3, "county_duty_desk", DEFAULT_STEP_S),
        (4, "county_supervisor", DEFAULT_REPEAT_S),
        (5, "county_supervisor", DEFAULT_REPEAT_S),
        (6, "county_supervisor", DEFAULT_REPEAT_S),
        (7, "county_supervisor", DEFAULT_REPEAT_S),
    ]
    assert CHAIN[-1] == "county_supervisor"


def test_next_step_rejects_a_negative_level() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        next_step(-1)


def test_a_configured_chain() -> None:
    policy = EscalationPolicy.from_mapping(
        {"chain": ["duty", "chief"], "step_s": 60, "repeat_s": 120}
    )
    assert policy.next_step(0) == (1, "duty", 60)
    assert policy.next_step(1) == (2, "chief", 120)
    assert policy.next_step(2) == (3, "chief", 120)


def test_from_mapping_defaults() -> None:
    assert EscalationPolicy.from_mapping({}) == EscalationPolicy()
    assert EscalationPolicy().sla_s == DEFAULT_SLA_S


@pytest.mark.parametrize(
    "config",
    [
        {"sla_s": {"critical": 0}},
        {"sla_s": {"critical": -5}},
        {"sla_s": {"critical": 1.5}},
        {"sla_s": {"critical": "300"}},
        {"sla_s": {"critical": True}},
        {"sla_s": {"someday": 300}},
        {"sla_s": [300]},
        {"chain": []},
        {"chain": "duty"},
        {"chain": ["duty", ""]},
        {"step_s": 0},
        {"repeat_s": None},
        {"repeat": 60},
    ],
)
def test_from_mapping_rejects_bad_configuration(config: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        EscalationPolicy.from_mapping(config)


def test_a_policy_needs_every_priority() -> None:
    with pytest.raises(ValueError, match="no SLA for priority 'routine'"):
        EscalationPolicy(sla_s={"critical": 1, "urgent": 2})


@pytest.mark.parametrize("status", STATES)
def test_overdue_only_while_waiting_on_someone(status: str) -> None:
    due = T0 + dt.timedelta(minutes=5)
    waiting = status in ("new", "delivered", "transfer_requested")
    assert overdue(status, due, due) is waiting
    assert overdue(status, due, due + dt.timedelta(hours=1)) is waiting
    assert overdue(status, due, due - dt.timedelta(seconds=1)) is False


def test_a_waiting_dispatch_without_a_deadline_is_overdue() -> None:
    assert overdue("new", None, T0) is True
    assert overdue("acknowledged", None, T0) is False


def test_an_acknowledged_clue_offered_to_a_neighbour_is_not_overdue() -> None:
    due = T0
    late = due + dt.timedelta(hours=1)
    assert overdue("transfer_requested", due, late) is True  # never taken: still on the clock
    assert overdue("transfer_requested", due, late, acknowledged=True) is False
