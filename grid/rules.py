"""Routing rules: what a report's category means for its priority and deadline.

Child categories are critical: ARCHITECTURE.md asks for seconds, and the
Action Plan's rapid-search mechanism starts from the first clue. A later issue
makes this table configurable; the defaults live here.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIORITIES = ("critical", "urgent", "routine")


@dataclass(frozen=True)
class Rule:
    priority: str
    ack_sla_s: int  # acknowledgement deadline in seconds


_CRITICAL = Rule("critical", 5 * 60)
_URGENT = Rule("urgent", 30 * 60)
_ROUTINE = Rule("routine", 24 * 3600)

RULES: dict[str, Rule] = {
    "CHILD": _CRITICAL,
    "ORIGIN": _CRITICAL,
    "ABUSE": _CRITICAL,
    "WOMAN": _URGENT,
    "LABOUR": _URGENT,
    "ADOPT": _URGENT,
    "BIRTH": _URGENT,
    # Unclassified free text is read by a person first; treated as urgent.
    "UNCLASSIFIED": _URGENT,
    "ONLINE": _ROUTINE,
    "OTHER": _ROUTINE,
}


def rule_for(category: str) -> Rule:
    """The rule for a category; unknown categories are urgent, never dropped."""
    return RULES.get(category, _URGENT)
