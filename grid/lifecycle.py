"""The dispatch lifecycle as a state machine: what may happen next, by whom.

    new ─deliver─> delivered ─acknowledge─> acknowledged ─close(outcome)─> closed
     └──────────────acknowledge──────────────┘
    any open state ─close_duplicate(of)─> closed   (the system, when the case is closed
                                                   at another station's dispatch)
    new | delivered | acknowledged ─request_transfer─> transfer_requested
    transfer_requested ─accept_transfer─> new (at the target station)
    transfer_requested ─reject_transfer─> the state before the request

`plan` is pure: it checks an action against the dispatch as read and returns
the one guarded single-document update that performs it, so the caller runs
`update_one(guard, {"$set": set_fields, "$push": push})` and treats "nothing
matched" as "the state changed underneath" (re-read, answer 409). No
multi-document transaction is ever needed, on SecantusDB or on a replica set.

Clock: `plan` never reads it. The caller takes one `now` (naive UTC) and
  - sets every field named in `Plan.stamp` to `now` (e.g. acknowledged_at,
    closed_at; a cleared timestamp such as acknowledged_at on
    accept_transfer is in `set_fields` as None instead),
  - adds `"at": now` to the audit entry and to every entry in `Plan.push`,
  - when `Plan.restart_sla` is true (only when a station accepts a transfer: the
    clue is new to it), sets `ack_deadline` to `grid.escalation.deadline(priority,
    now)`; the escalation level is never reset, so the chain above the station
    keeps climbing from where it stood,
  - when `Plan.answer_window` is true (a transfer request), sets
    `transfer_answer_by` to that same deadline: the receiving station's own
    window to answer, while the clue's deadline keeps running.

The clock belongs to the clue: a transfer request or its rejection never moves
`ack_deadline` or `escalation_level`, so asking a neighbour to take an overdue
clue, and being refused, leaves it overdue and escalating.
`None` in `set_fields` means "clear the field" ($unset or null; a guard of
`field: None` matches both in MongoDB).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

STATES = ("new", "delivered", "acknowledged", "transfer_requested", "closed")
OUTCOMES = (
    "rescued",
    "arrested",
    "confirmed_no_crime",
    "false_report",
    "duplicate",
    "referred",
    "other",
)
# Closing a clue as not real, or as something unlisted, must say why: these
# are the outcomes a supervisor reviews when a clue is dropped.
OUTCOMES_NEEDING_REASON = frozenset({"false_report", "duplicate", "other"})
ACTIONS = (
    "deliver",
    "acknowledge",
    "request_transfer",
    "accept_transfer",
    "reject_transfer",
    "note",
    "close",
    "close_duplicate",
    "reopen",
)

# Who may act: the delivery job, an officer of the dispatch's station, or an
# officer of the station a transfer was requested to.
SYSTEM = "system"
STATION = "station"
TARGET = "target"

# States a pending transfer can return to on rejection.
_RETURNABLE = frozenset({"new", "delivered", "acknowledged"})

# Error code -> HTTP status the API answers with.
HTTP_STATUS = {
    "not_allowed": 409,
    "forbidden": 403,
    "unknown_station": 422,
    "same_station": 422,
    "outcome_required": 422,
    "bad_outcome": 422,
    "reason_required": 422,
}


@dataclass(frozen=True)
class Transition:
    """One row of the state machine.

    `to_state` None means the state is not a fixed target: `note` keeps the
    current state; `reject_transfer` (`restores=True`) goes back to the
    dispatch's `status_before_transfer`.
    """

    action: str
    from_states: frozenset[str]
    to_state: str | None
    by: str
    restores: bool = False


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("deliver", frozenset({"new"}), "delivered", SYSTEM),
        # An officer may acknowledge from the inbox before the delivery job
        # has recorded the delivery (the duty-phone SMS can win the race).
        Transition("acknowledge", frozenset({"new", "delivered"}), "acknowledged", STATION),
        # A misrouted clue can be passed on without acknowledging it first.
        Transition(
            "request_transfer",
            frozenset({"new", "delivered", "acknowledged"}),
            "transfer_requested",
            STATION,
        ),
        # The receiving station starts from scratch: delivered to it, then
        # acknowledged by it, under a fresh SLA.
        Transition("accept_transfer", frozenset({"transfer_requested"}), "new", TARGET),
        Transition(
            "reject_transfer", frozenset({"transfer_requested"}), None, TARGET, restores=True
        ),
        # Closed stays closed unless an officer of its station reopens it, with a reason:
        # back to acknowledged (it was acknowledged before it was closed).
        Transition("reopen", frozenset({"closed"}), "acknowledged", STATION),
        Transition(
            "note",
            frozenset({"new", "delivered", "acknowledged", "transfer_requested"}),
            None,
            STATION,
        ),
        # Only an acknowledged clue can be closed, so every closed clue has an
        # acknowledgement time and response-time figures stay honest.
        Transition("close", frozenset({"acknowledged"}), "closed", STATION),
        # Closing a case closes every other dispatch of its reports (the county
        # desk's copy) as a duplicate of the one closed, whatever its state.
        Transition(
            "close_duplicate",
            frozenset({"new", "delivered", "acknowledged", "transfer_requested"}),
            "closed",
            SYSTEM,
        ),
    )
}


class TransitionError(Exception):
    """An action that cannot be applied; `code` is machine-readable (see HTTP_STATUS).

    `current_state` is set for "not_allowed" (the 409 body shows it) and for
    the input errors; it is None for "forbidden", which must not tell another
    station anything about a dispatch it cannot see.
    """

    def __init__(self, code: str, message: str, current_state: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.current_state = current_state

    @property
    def http_status(self) -> int:
        """The HTTP status the API answers with."""
        return HTTP_STATUS.get(self.code, 422)


@dataclass(frozen=True)
class Plan:
    """One guarded single-document update and its audit entry (see the module docstring)."""

    from_state: str
    to_state: str
    guard: dict[str, str | None]  # filter fields that must still hold (plus the _id)
    set_fields: dict[str, object]  # $set; None clears the field
    audit: dict[str, object]  # who, from, to, why; the caller adds "at" and the dispatch id
    push: dict[str, dict[str, object]] = field(default_factory=dict)  # $push; caller adds "at"
    stamp: tuple[str, ...] = ()  # fields the caller sets to its `now`
    restart_sla: bool = False  # caller sets ack_deadline from `now`
    answer_window: bool = False  # caller sets transfer_answer_by from `now`


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def plan(
    action: str,
    current_status: str,
    *,
    dispatch_station: str,
    actor_station: str | None = None,
    actor: str | None = None,
    transfer_to: str | None = None,
    status_before_transfer: str | None = None,
    target_station: str | None = None,
    outcome: str | None = None,
    reason: str | None = None,
    known_stations: Container[str] = frozenset(),
    duplicate_of: str | None = None,
) -> Plan:
    """Validate `action` on a dispatch as read and plan its guarded update; raise TransitionError.

    `dispatch_station`, `transfer_to` and `status_before_transfer` are the
    dispatch's stored fields; `actor_station` is the acting officer's station
    (None for the delivery job) and `actor` the officer's id; `target_station`
    is the requested target of request_transfer; `reason` is the why (the note
    text for `note`); `duplicate_of` the dispatch whose closing closes this
    one. Checks run in this order: the actor can see the dispatch (else
    forbidden, without the state), the state allows the action (else
    not_allowed with the state), the actor's role, then the input.
    """
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise ValueError(f"unknown action {action!r}")
    if current_status not in STATES:
        raise ValueError(f"unknown dispatch status {current_status!r}")
    reason = _clean(reason)

    # Officers see only their station's dispatches and the ones offered to it.
    if actor_station is not None and actor_station not in (dispatch_station, transfer_to):
        raise TransitionError("forbidden", "this dispatch belongs to another station")
    if current_status not in transition.from_states:
        raise TransitionError(
            "not_allowed", f"cannot {action} a dispatch that is {current_status}", current_status
        )
    _check_role(transition, actor_station, dispatch_station, transfer_to)

    guard: dict[str, str | None] = {"status": current_status, "station_code": dispatch_station}
    audit: dict[str, object] = {
        "action": action,
        "from": current_status,
        "to": transition.to_state or current_status,
        "by": actor,
        "station": actor_station,
        "dispatch_station": dispatch_station,
        "reason": reason,
    }
    if action == "deliver":
        return Plan(
            current_status,
            "delivered",
            guard,
            {"status": "delivered"},
            audit,
            stamp=("delivered_at",),
        )
    if action == "acknowledge":
        return Plan(
            current_status,
            "acknowledged",
            guard,
            {"status": "acknowledged", "acknowledged_by": actor},
            audit,
            stamp=("acknowledged_at",),
        )
    if action == "request_transfer":
        return _request_transfer(
            current_status, guard, audit, dispatch_station, target_station, reason, known_stations
        )
    if action in ("accept_transfer", "reject_transfer"):
        # Pin the whole pending request: a reject, a new request and an
        # acknowledge in between must not let this answer apply to it.
        guard["transfer_to"] = transfer_to
        guard["status_before_transfer"] = status_before_transfer
        audit["transfer_to"] = transfer_to
        if action == "accept_transfer":
            return _accept_transfer(current_status, guard, audit, dispatch_station, transfer_to)
        return _reject_transfer(current_status, guard, audit, status_before_transfer, reason)
    if action == "note":
        if reason is None:
            raise TransitionError("reason_required", "a note needs text", current_status)
        note: dict[str, object] = {"text": reason, "by": actor, "station": actor_station}
        return Plan(current_status, current_status, guard, {}, audit, push={"notes": note})
    if action == "reopen":
        return _reopen(current_status, guard, audit, actor, reason, duplicate_of)
    if action == "close_duplicate":
        if duplicate_of is None:
            raise ValueError("close_duplicate needs the dispatch it duplicates")
        audit["outcome"] = "duplicate"
        audit["duplicate_of"] = duplicate_of
        return Plan(
            current_status,
            "closed",
            guard,
            {"status": "closed", "outcome": "duplicate", "duplicate_of": duplicate_of,
             "closed_by": actor, "transfer_to": None, "status_before_transfer": None,
             "transfer_answer_by": None},
            audit,
            stamp=("closed_at",),
        )
    return _close(current_status, guard, audit, actor, outcome, reason)


def _check_role(
    transition: Transition,
    actor_station: str | None,
    dispatch_station: str,
    transfer_to: str | None,
) -> None:
    if transition.by == SYSTEM:
        ok = actor_station is None
    elif transition.by == STATION:
        ok = actor_station == dispatch_station
    else:
        ok = actor_station is not None and actor_station == transfer_to
    if not ok:
        who = {
            SYSTEM: "the delivery job",
            STATION: "the dispatch's station",
            TARGET: "the station the transfer was requested to",
        }[transition.by]
        raise TransitionError("forbidden", f"only {who} may {transition.action}")


def _request_transfer(
    current_status: str,
    guard: dict[str, str | None],
    audit: dict[str, object],
    dispatch_station: str,
    target_station: str | None,
    reason: str | None,
    known_stations: Container[str],
) -> Plan:
    target = _clean(target_station)
    if target == dispatch_station:
        raise TransitionError("same_station", "cannot transfer to the same station", current_status)
    if target is None or target not in known_stations:
        raise TransitionError(
            "unknown_station", f"unknown target station {target_station!r}", current_status
        )
    if reason is None:
        raise TransitionError(
            "reason_required", "a transfer request needs a reason", current_status
        )
    audit["transfer_to"] = target
    return Plan(
        current_status,
        "transfer_requested",
        guard,
        {
            "status": "transfer_requested",
            "transfer_to": target,
            "status_before_transfer": current_status,
            "transfer_reason": reason,
            # A rejection of an earlier request is stale now.
            "transfer_rejection_reason": None,
        },
        audit,
        stamp=("transfer_requested_at",),
        # The target station has one SLA to accept or reject; the clue's own
        # deadline and escalation level do not move.
        answer_window=True,
    )


def _accept_transfer(
    current_status: str,
    guard: dict[str, str | None],
    audit: dict[str, object],
    dispatch_station: str,
    transfer_to: str | None,
) -> Plan:
    # _check_role made sure transfer_to is the actor's station, so not None.
    assert transfer_to is not None
    return Plan(
        current_status,
        "new",
        guard,
        {
            "status": "new",
            "station_code": transfer_to,
            "transferred_from": dispatch_station,
            "transfer_to": None,
            "status_before_transfer": None,
            "transfer_rejection_reason": None,
            # Delivered and acknowledged by the old station, not by this one;
            # those facts stay in the audit trail.
            "delivered_at": None,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "transfer_answer_by": None,
        },
        audit,
        stamp=("transferred_at",),
        # A fresh deadline for the new station; escalation_level is kept, so the
        # county desk and supervisor are not asked again from the bottom.
        restart_sla=True,
    )


def _reject_transfer(
    current_status: str,
    guard: dict[str, str | None],
    audit: dict[str, object],
    status_before_transfer: str | None,
    reason: str | None,
) -> Plan:
    if reason is None:
        raise TransitionError("reason_required", "a rejection needs a reason", current_status)
    # A missing or corrupt previous state must not strand the clue: "new"
    # makes the station acknowledge it again under its running SLA.
    back = status_before_transfer if status_before_transfer in _RETURNABLE else "new"
    assert back is not None
    audit["to"] = back
    return Plan(
        current_status,
        back,
        guard,
        {
            "status": back,
            "transfer_to": None,
            "status_before_transfer": None,
            "transfer_rejection_reason": reason,
            "transfer_answer_by": None,
        },
        audit,
        stamp=("transfer_rejected_at",),
        # Back with its original deadline and escalation level, overdue if it was.
    )


def _close(
    current_status: str,
    guard: dict[str, str | None],
    audit: dict[str, object],
    actor: str | None,
    outcome: str | None,
    reason: str | None,
) -> Plan:
    outcome = _clean(outcome)
    if outcome is None:
        raise TransitionError("outcome_required", "closing needs an outcome", current_status)
    if outcome not in OUTCOMES:
        raise TransitionError(
            "bad_outcome",
            f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}",
            current_status,
        )
    if outcome in OUTCOMES_NEEDING_REASON and reason is None:
        raise TransitionError(
            "reason_required", f"closing as {outcome} needs a reason", current_status
        )
    audit["outcome"] = outcome
    return Plan(
        current_status,
        "closed",
        guard,
        {"status": "closed", "outcome": outcome, "outcome_reason": reason, "closed_by": actor},
        audit,
        stamp=("closed_at",),
    )


def _reopen(
    current_status: str,
    guard: dict[str, str | None],
    audit: dict[str, object],
    actor: str | None,
    reason: str | None,
    duplicate_of: str | None,
) -> Plan:
    """A closed clue worked again: explicit, with a reason, by its own station.

    A copy closed as the duplicate of another dispatch (the county desk's) is not
    reopened on its own: the clue it duplicates is the one to reopen.
    """
    if duplicate_of is not None:
        raise TransitionError(
            "not_allowed",
            f"this copy was closed with dispatch {duplicate_of}: reopen that one",
            current_status,
        )
    if reason is None:
        raise TransitionError("reason_required", "reopening needs a reason", current_status)
    guard["duplicate_of"] = None
    return Plan(
        current_status,
        "acknowledged",
        guard,
        {"status": "acknowledged", "outcome": None, "outcome_reason": None, "closed_by": None,
         "closed_at": None, "reopened_by": actor, "reopen_reason": reason},
        audit,
        stamp=("reopened_at",),
    )
