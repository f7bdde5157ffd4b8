"""Acknowledgement deadlines and the escalation chain for unacknowledged clues.

A dispatch carries `ack_deadline` and `escalation_level` (0: not escalated
yet). When the deadline passes and the dispatch is still unacknowledged, the
SLA job calls `next_step(level)`: it notifies the returned role, stores the
returned level and schedules itself again after the returned delay. Levels
1..len(chain) climb the chain (station duty officer → station chief → county
duty desk → county supervisor); past the end the level keeps counting up and
the last role is notified again every `repeat_s`, until someone acknowledges
(ARCHITECTURE.md: "again and again"). Because the level only grows, a
deterministic job id per (dispatch, level) makes each step run once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from grid.rules import PRIORITIES

DEFAULT_SLA_S: dict[str, int] = {"critical": 300, "urgent": 1800, "routine": 86400}
CHAIN = ("station_duty_officer", "station_chief", "county_duty_desk", "county_supervisor")
# Between two levels of the chain, and between repeats at the top of it.
DEFAULT_STEP_S = 300
DEFAULT_REPEAT_S = 900
# Only a clue nobody has taken yet can be overdue: acknowledged and closed ones
# are someone's. A pending transfer of an unacknowledged clue stays on the
# owning station's clock (the receiving station has its own window to answer).
OVERDUE_STATES = frozenset({"new", "delivered", "transfer_requested"})


def _positive_int(name: str, value: object) -> int:
    # bool is an int subclass; `true` in a config file is not a duration.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer of seconds, got {value!r}")
    return value


@dataclass(frozen=True)
class EscalationPolicy:
    """SLA per priority, the escalation chain and its timing (all in seconds)."""

    sla_s: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_S))
    chain: tuple[str, ...] = CHAIN
    step_s: int = DEFAULT_STEP_S
    repeat_s: int = DEFAULT_REPEAT_S

    def __post_init__(self) -> None:
        for priority in PRIORITIES:
            if priority not in self.sla_s:
                raise ValueError(f"no SLA for priority {priority!r}")
        for priority, seconds in self.sla_s.items():
            if priority not in PRIORITIES:
                raise ValueError(f"unknown priority {priority!r}; one of {', '.join(PRIORITIES)}")
            _positive_int(f"sla_s[{priority!r}]", seconds)
        if not self.chain or not all(isinstance(r, str) and r for r in self.chain):
            raise ValueError("chain must be a non-empty list of role names")
        _positive_int("step_s", self.step_s)
        _positive_int("repeat_s", self.repeat_s)

    @classmethod
    def from_mapping(cls, config: Mapping[str, object]) -> EscalationPolicy:
        """A policy from configuration; missing keys and priorities keep their defaults."""
        unknown = set(config) - {"sla_s", "chain", "step_s", "repeat_s"}
        if unknown:
            # A typo must not silently leave the default in force.
            raise ValueError(f"unknown escalation settings: {', '.join(sorted(unknown))}")
        sla: dict[str, int] = dict(DEFAULT_SLA_S)
        raw_sla = config.get("sla_s", {})
        if not isinstance(raw_sla, Mapping):
            raise ValueError("sla_s must be a mapping of priority to seconds")
        for priority, seconds in raw_sla.items():
            if priority not in PRIORITIES:
                raise ValueError(f"unknown priority {priority!r}; one of {', '.join(PRIORITIES)}")
            sla[priority] = _positive_int(f"sla_s[{priority!r}]", seconds)
        raw_chain = config.get("chain", CHAIN)
        if isinstance(raw_chain, str) or not isinstance(raw_chain, list | tuple):
            raise ValueError("chain must be a list of role names")
        return cls(
            sla_s=sla,
            chain=tuple(raw_chain),
            step_s=_positive_int("step_s", config.get("step_s", DEFAULT_STEP_S)),
            repeat_s=_positive_int("repeat_s", config.get("repeat_s", DEFAULT_REPEAT_S)),
        )

    def deadline(self, priority: str, since: dt.datetime) -> dt.datetime:
        """When a dispatch of `priority` made (or restarted) at `since` must be acknowledged."""
        try:
            seconds = self.sla_s[priority]
        except KeyError:
            raise ValueError(f"unknown priority {priority!r}") from None
        return since + dt.timedelta(seconds=seconds)

    def next_step(self, level: int) -> tuple[int, str, int]:
        """(next level, role to notify, seconds until the escalation after it) from `level`."""
        if level < 0:
            raise ValueError(f"escalation level must be >= 0, got {level}")
        nxt = level + 1
        top = len(self.chain)
        role = self.chain[min(nxt, top) - 1]
        # Once the top is reached, only repeats follow.
        delay = self.step_s if nxt < top else self.repeat_s
        return nxt, role, delay


DEFAULT_POLICY = EscalationPolicy()


def deadline(
    priority: str, since: dt.datetime, sla_s: Mapping[str, int] | None = None
) -> dt.datetime:
    """The acknowledgement deadline for `priority` from `since` (default SLA table unless given)."""
    table = DEFAULT_SLA_S if sla_s is None else sla_s
    try:
        seconds = table[priority]
    except KeyError:
        raise ValueError(f"unknown priority {priority!r}") from None
    return since + dt.timedelta(seconds=seconds)


def next_step(level: int) -> tuple[int, str, int]:
    """`EscalationPolicy.next_step` with the default policy."""
    return DEFAULT_POLICY.next_step(level)


def overdue(status: str, deadline: dt.datetime | None, now: dt.datetime,
            acknowledged: bool = False) -> bool:
    """Whether a dispatch in `status` is past its deadline and still waiting on someone.

    A missing deadline counts as overdue for a waiting dispatch: a clue
    without a deadline must escalate, never wait forever. An `acknowledged`
    clue (its station took it, then asked another to take it over) is
    someone's while the transfer is pending: not overdue.
    """
    if status not in OVERDUE_STATES or acknowledged:
        return False
    return deadline is None or now >= deadline
