"""Routing rules: what a report's category means for priority and recipients.

The acknowledgement deadline follows from the priority (grid/escalation.py).

A configurable table (JSON, see `RoutingRules.from_mapping`); the defaults
follow the Action Plan: child abduction, children of unknown origin and sexual
abuse of minors are critical, and child categories also go to the county
criminal-investigation duty desk (刑侦大队值班室) besides the local station.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRIORITIES = ("critical", "urgent", "routine")
# Who else gets a dispatch besides the station responsible for the cell.
EXTRA_RECIPIENTS = ("county_desk",)


@dataclass(frozen=True)
class Rule:
    priority: str
    extra_recipients: tuple[str, ...] = ()


_CHILD = Rule("critical", ("county_desk",))
_URGENT = Rule("urgent")
_ROUTINE = Rule("routine")

DEFAULT_RULES: dict[str, Rule] = {
    "CHILD": _CHILD,
    "ORIGIN": _CHILD,
    "ABUSE": _CHILD,
    "WOMAN": _URGENT,
    "LABOUR": _URGENT,
    "ADOPT": Rule("urgent", ("county_desk",)),  # selling a baby is a child case
    "BIRTH": _URGENT,
    # Unclassified free text is read by a person first; treated as urgent.
    "UNCLASSIFIED": _URGENT,
    "ONLINE": _ROUTINE,
    "OTHER": _ROUTINE,
}


@dataclass(frozen=True)
class RoutingRules:
    """The table in force: category → Rule, with a default for anything unknown."""

    rules: Mapping[str, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    default: Rule = _URGENT

    def rule_for(self, category: str) -> Rule:
        """The rule for a category; unknown categories get the default, never dropped."""
        return self.rules.get(category, self.default)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RoutingRules:
        """Rules from `{"CHILD": {"priority": "critical", "extra_recipients":
        ["county_desk"]}, ...}`; categories not named keep their default.
        """
        rules = dict(DEFAULT_RULES)
        for category, spec in data.items():
            rules[str(category)] = _rule(str(category), spec)
        return cls(rules)

    @classmethod
    def load(cls, path: str | Path) -> RoutingRules:
        """Rules from a JSON file (see `from_mapping`)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"routing rules {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"routing rules {path}: expected an object of categories")
        return cls.from_mapping(data)


def _rule(category: str, spec: object) -> Rule:
    if not isinstance(spec, Mapping):
        raise ValueError(f"rule {category}: expected an object")
    priority = spec.get("priority")
    if priority not in PRIORITIES:
        raise ValueError(f"rule {category}: priority must be one of {', '.join(PRIORITIES)}")
    unknown = set(spec) - {"priority", "extra_recipients"}
    if unknown:
        raise ValueError(f"rule {category}: unknown keys {', '.join(sorted(unknown))}")
    extra = spec.get("extra_recipients", [])
    if not isinstance(extra, list) or any(e not in EXTRA_RECIPIENTS for e in extra):
        raise ValueError(f"rule {category}: extra_recipients may hold {EXTRA_RECIPIENTS}")
    return Rule(str(priority), tuple(extra))


_DEFAULT = RoutingRules()


def rule_for(category: str) -> Rule:
    """The default table's rule for a category (the gateway uses its configured table)."""
    return _DEFAULT.rule_for(category)
