"""The dispatch state machine: every action from every state, who may act, inputs."""

from __future__ import annotations

from typing import Any

import pytest

from grid.lifecycle import (
    ACTIONS,
    OUTCOMES,
    STATES,
    TRANSITIONS,
    Plan,
    TransitionError,
    plan,
)

STATIONS = frozenset({"S1", "S2", "S3"})

# Written out independently of grid.lifecycle.TRANSITIONS, so a change to the
# table has to be made here too, on purpose.
ALLOWED: dict[str, dict[str, str]] = {
    "deliver": {"new": "delivered"},
    "acknowledge": {"new": "acknowledged", "delivered": "acknowledged"},
    "request_transfer": {
        "new": "transfer_requested",
        "delivered": "transfer_requested",
        "acknowledged": "transfer_requested",
    },
    "accept_transfer": {"transfer_requested": "new"},
    "reject_transfer": {"transfer_requested": "acknowledged"},  # the state before, see ctx
    "note": {
        "new": "new",
        "delivered": "delivered",
        "acknowledged": "acknowledged",
        "transfer_requested": "transfer_requested",
    },
    "close": {"acknowledged": "closed"},
    "close_duplicate": {
        "new": "closed",
        "delivered": "closed",
        "acknowledged": "closed",
        "transfer_requested": "closed",
    },
    "reopen": {"closed": "acknowledged"},
}


def ctx(action: str, state: str) -> dict[str, Any]:
    """A call that is valid in every respect except, perhaps, the state."""
    pending = state == "transfer_requested"
    kw: dict[str, Any] = {
        "dispatch_station": "S1",
        "transfer_to": "S2" if pending else None,
        "status_before_transfer": "acknowledged" if pending else None,
        "known_stations": STATIONS,
        "actor": "officer-7",
        "reason": "why not",
    }
    if action in ("deliver", "close_duplicate"):
        kw["actor_station"] = None
    elif action in ("accept_transfer", "reject_transfer"):
        # The station that can see the dispatch: the target while one is pending.
        kw["actor_station"] = "S2" if pending else "S1"
    else:
        kw["actor_station"] = "S1"
    if action == "request_transfer":
        kw["target_station"] = "S3"
    if action == "close":
        kw["outcome"] = "rescued"
    if action == "close_duplicate":
        kw["duplicate_of"] = "d-closed"
    return kw


def test_the_tables_cover_every_action_and_state() -> None:
    assert set(ALLOWED) == set(ACTIONS) == set(TRANSITIONS)
    for action, moves in ALLOWED.items():
        assert set(moves) == TRANSITIONS[action].from_states, action
        assert set(moves) <= set(STATES)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_from_every_state(action: str, state: str) -> None:
    if state in ALLOWED[action]:
        p = plan(action, state, **ctx(action, state))
        assert p.from_state == state
        assert p.to_state == ALLOWED[action][state]
        assert p.guard["status"] == state
        assert p.guard["station_code"] == "S1"
        assert p.audit["action"] == action
        assert (p.audit["from"], p.audit["to"]) == (state, p.to_state)
        assert p.audit["by"] == "officer-7"
        if p.to_state != state:
            assert p.set_fields["status"] == p.to_state
        else:
            assert "status" not in p.set_fields
    else:
        with pytest.raises(TransitionError) as err:
            plan(action, state, **ctx(action, state))
        assert err.value.code == "not_allowed"
        assert err.value.current_state == state
        assert err.value.http_status == 409
        assert state in err.value.message


def test_closed_is_final_but_for_an_explicit_reopen() -> None:
    for action in ACTIONS:
        if action == "reopen":
            continue
        with pytest.raises(TransitionError) as err:
            plan(action, "closed", **ctx(action, "closed"))
        assert (err.value.code, err.value.current_state) == ("not_allowed", "closed")


def test_reopen_needs_a_reason_its_station_and_not_a_duplicate_copy() -> None:
    p = plan("reopen", "closed", dispatch_station="S1", actor_station="S1", actor="o1",
             reason="新线索")
    assert p.set_fields["outcome"] is None
    assert p.set_fields["closed_at"] is None
    assert p.set_fields["reopen_reason"] == "新线索"
    assert p.guard == {"status": "closed", "station_code": "S1", "duplicate_of": None}
    assert p.stamp == ("reopened_at",)
    with pytest.raises(TransitionError) as err:
        plan("reopen", "closed", dispatch_station="S1", actor_station="S1", actor="o1")
    assert err.value.code == "reason_required"
    with pytest.raises(TransitionError) as err:
        plan("reopen", "closed", dispatch_station="S1", actor_station="S2", actor="o2",
             reason="x")
    assert err.value.code == "forbidden"
    with pytest.raises(TransitionError) as err:
        plan("reopen", "closed", dispatch_station="S1", actor_station="S1", actor="o1",
             reason="x", duplicate_of="d1")
    assert (err.value.code, err.value.http_status) == ("not_allowed", 409)


def test_acknowledge_plan() -> None:
    p = plan("acknowledge", "delivered", dispatch_station="S1", actor_station="S1", actor="o1")
    assert p == Plan(
        from_state="delivered",
        to_state="acknowledged",
        guard={"status": "delivered", "station_code": "S1"},
        set_fields={"status": "acknowledged", "acknowledged_by": "o1"},
        audit={
            "action": "acknowledge",
            "from": "delivered",
            "to": "acknowledged",
            "by": "o1",
            "station": "S1",
            "dispatch_station": "S1",
            "reason": None,
        },
        stamp=("acknowledged_at",),
    )
    assert not p.restart_sla


def test_deliver_is_the_system_only() -> None:
    p = plan("deliver", "new", dispatch_station="S1")
    assert p.set_fields == {"status": "delivered"}
    assert p.stamp == ("delivered_at",)
    with pytest.raises(TransitionError) as err:
        plan("deliver", "new", dispatch_station="S1", actor_station="S1")
    assert err.value.code == "forbidden"


def test_transfer_accept_round_trip() -> None:
    req = plan(
        "request_transfer",
        "delivered",
        dispatch_station="S1",
        actor_station="S1",
        actor="o1",
        target_station="S2",
        reason="地址在S2辖区",
        known_stations=STATIONS,
    )
    assert req.to_state == "transfer_requested"
    assert req.set_fields["transfer_to"] == "S2"
    assert req.set_fields["status_before_transfer"] == "delivered"
    assert req.set_fields["transfer_reason"] == "地址在S2辖区"
    # The clue's clock does not move: the target gets its own window to answer.
    assert "escalation_level" not in req.set_fields
    assert "ack_deadline" not in req.set_fields
    assert not req.restart_sla
    assert req.answer_window
    assert req.audit["transfer_to"] == "S2"

    # Apply the update to a plain dict as the database would.
    doc: dict[str, Any] = {"status": "delivered", "station_code": "S1"}
    assert all(doc.get(k) == v for k, v in req.guard.items())
    doc.update(req.set_fields)

    acc = plan(
        "accept_transfer",
        doc["status"],
        dispatch_station=doc["station_code"],
        actor_station="S2",
        actor="o2",
        transfer_to=doc["transfer_to"],
        status_before_transfer=doc["status_before_transfer"],
    )
    assert acc.guard == {
        "status": "transfer_requested",
        "station_code": "S1",
        "transfer_to": "S2",
        "status_before_transfer": "delivered",
    }
    assert all(doc.get(k) == v for k, v in acc.guard.items())
    doc.update(acc.set_fields)
    assert doc["status"] == "new"
    assert doc["station_code"] == "S2"
    assert doc["transferred_from"] == "S1"
    assert doc["transfer_to"] is None
    assert doc["status_before_transfer"] is None
    assert doc["acknowledged_at"] is None
    assert doc["transfer_answer_by"] is None
    assert acc.restart_sla  # a fresh deadline for the new station...
    assert "escalation_level" not in acc.set_fields  # ...but the chain above keeps its level
    assert acc.stamp == ("transferred_at",)

    # The new station starts again: delivered to it, acknowledged by it.
    plan("deliver", "new", dispatch_station="S2")
    ack = plan("acknowledge", "new", dispatch_station="S2", actor_station="S2")
    assert ack.guard == {"status": "new", "station_code": "S2"}
    # The old station cannot see it any more.
    with pytest.raises(TransitionError) as err:
        plan("acknowledge", "new", dispatch_station="S2", actor_station="S1")
    assert err.value.code == "forbidden"
    assert err.value.current_state is None


@pytest.mark.parametrize("before", ["new", "delivered", "acknowledged"])
def test_transfer_reject_returns_to_the_state_before(before: str) -> None:
    req = plan(
        "request_transfer",
        before,
        dispatch_station="S1",
        actor_station="S1",
        target_station="S2",
        reason="not ours",
        known_stations=STATIONS,
    )
    doc: dict[str, Any] = {"status": before, "station_code": "S1"}
    doc.update(req.set_fields)
    rej = plan(
        "reject_transfer",
        doc["status"],
        dispatch_station="S1",
        actor_station="S2",
        transfer_to=doc["transfer_to"],
        status_before_transfer=doc["status_before_transfer"],
        reason="村子归S1管",
    )
    assert all(doc.get(k) == v for k, v in rej.guard.items())
    doc.update(rej.set_fields)
    assert doc["status"] == before == rej.to_state == rej.audit["to"]
    assert doc["station_code"] == "S1"
    assert doc["transfer_rejection_reason"] == "村子归S1管"
    assert doc["transfer_to"] is None
    assert doc["status_before_transfer"] is None
    assert rej.audit["reason"] == "村子归S1管"
    # Back with its original deadline and escalation level: a rejection restarts nothing.
    assert not rej.restart_sla
    assert "escalation_level" not in rej.set_fields
    assert doc["transfer_answer_by"] is None


def test_reject_with_a_lost_previous_state_goes_back_to_new() -> None:
    rej = plan(
        "reject_transfer",
        "transfer_requested",
        dispatch_station="S1",
        actor_station="S2",
        transfer_to="S2",
        status_before_transfer=None,
        reason="no",
    )
    assert rej.to_state == "new"
    assert rej.guard["status_before_transfer"] is None
    assert not rej.restart_sla  # under the deadline it already had


@pytest.mark.parametrize("action", ["accept_transfer", "reject_transfer"])
def test_only_the_target_station_answers_a_transfer(action: str) -> None:
    kw = ctx(action, "transfer_requested") | {"actor_station": "S1"}
    with pytest.raises(TransitionError) as err:
        plan(action, "transfer_requested", **kw)
    assert (err.value.code, err.value.http_status) == ("forbidden", 403)


@pytest.mark.parametrize("action", ["acknowledge", "request_transfer", "note", "close"])
def test_the_target_station_cannot_work_a_pending_transfer(action: str) -> None:
    kw = ctx(action, "transfer_requested") | {"actor_station": "S2"}
    with pytest.raises(TransitionError) as err:
        plan(action, "transfer_requested", **kw)
    # A state the origin cannot act in either: the state is the answer.
    expected = "forbidden" if action == "note" else "not_allowed"
    assert err.value.code == expected


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", STATES)
def test_another_station_is_forbidden_without_learning_the_state(action: str, state: str) -> None:
    kw = ctx(action, state) | {"actor_station": "S3"}
    with pytest.raises(TransitionError) as err:
        plan(action, state, **kw)
    assert err.value.code == "forbidden"
    assert err.value.current_state is None
    assert state not in err.value.message


@pytest.mark.parametrize("action", ["acknowledge", "request_transfer", "note", "close"])
def test_officer_actions_need_an_officer(action: str) -> None:
    state = "acknowledged" if action != "acknowledge" else "new"
    kw = ctx(action, state) | {"actor_station": None}
    with pytest.raises(TransitionError) as err:
        plan(action, state, **kw)
    assert err.value.code == "forbidden"


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("S1", "same_station"),
        ("S9", "unknown_station"),
        (None, "unknown_station"),
        ("  ", "unknown_station"),
    ],
)
def test_transfer_target_must_be_another_known_station(target: str | None, code: str) -> None:
    kw = ctx("request_transfer", "acknowledged") | {"target_station": target}
    with pytest.raises(TransitionError) as err:
        plan("request_transfer", "acknowledged", **kw)
    assert err.value.code == code
    assert err.value.current_state == "acknowledged"
    assert err.value.http_status == 422


@pytest.mark.parametrize("reason", [None, "", "   "])
@pytest.mark.parametrize(
    ("action", "state"),
    [("request_transfer", "new"), ("reject_transfer", "transfer_requested"), ("note", "delivered")],
)
def test_reason_required(action: str, state: str, reason: str | None) -> None:
    with pytest.raises(TransitionError) as err:
        plan(action, state, **(ctx(action, state) | {"reason": reason}))
    assert err.value.code == "reason_required"


def test_accept_needs_no_reason() -> None:
    kw = ctx("accept_transfer", "transfer_requested") | {"reason": None}
    assert plan("accept_transfer", "transfer_requested", **kw).to_state == "new"


def test_note_keeps_the_state_and_pushes_the_text() -> None:
    p = plan(
        "note",
        "acknowledged",
        dispatch_station="S1",
        actor_station="S1",
        actor="o1",
        reason="  已联系学校  ",
    )
    assert p.to_state == p.from_state == "acknowledged"
    assert p.set_fields == {}
    assert p.push == {"notes": {"text": "已联系学校", "by": "o1", "station": "S1"}}
    assert p.audit["reason"] == "已联系学校"


def close(outcome: str | None, reason: str | None = None) -> Plan:
    return plan(
        "close",
        "acknowledged",
        dispatch_station="S1",
        actor_station="S1",
        actor="o1",
        outcome=outcome,
        reason=reason,
    )


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_close_with_each_outcome(outcome: str) -> None:
    p = close(outcome, reason="核实完毕")
    assert p.set_fields == {
        "status": "closed",
        "outcome": outcome,
        "outcome_reason": "核实完毕",
        "closed_by": "o1",
    }
    assert p.stamp == ("closed_at",)
    assert p.audit["outcome"] == outcome


@pytest.mark.parametrize("outcome", [None, "", " "])
def test_close_without_an_outcome(outcome: str | None) -> None:
    with pytest.raises(TransitionError) as err:
        close(outcome)
    assert (err.value.code, err.value.current_state) == ("outcome_required", "acknowledged")


def test_close_with_an_unknown_outcome() -> None:
    with pytest.raises(TransitionError) as err:
        close("solved")
    assert err.value.code == "bad_outcome"
    assert "rescued" in err.value.message


@pytest.mark.parametrize("outcome", ["false_report", "duplicate", "other"])
def test_some_outcomes_need_a_reason(outcome: str) -> None:
    with pytest.raises(TransitionError) as err:
        close(outcome)
    assert err.value.code == "reason_required"


@pytest.mark.parametrize("outcome", ["rescued", "arrested", "confirmed_no_crime", "referred"])
def test_other_outcomes_need_no_reason(outcome: str) -> None:
    assert close(outcome).set_fields["outcome_reason"] is None


def test_programming_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        plan("reopen-everything", "closed", dispatch_station="S1")
    with pytest.raises(ValueError, match="unknown dispatch status"):
        plan("note", "lost", dispatch_station="S1", actor_station="S1", reason="x")


def test_close_duplicate_is_the_system_closing_another_stations_copy() -> None:
    p = plan("close_duplicate", "transfer_requested", dispatch_station="S1", actor="system",
             transfer_to="S2", duplicate_of="d1")
    assert p.set_fields["outcome"] == "duplicate"
    assert p.set_fields["duplicate_of"] == "d1"
    assert p.set_fields["transfer_to"] is None  # a pending transfer ends with it
    assert p.audit["duplicate_of"] == "d1"
    assert p.stamp == ("closed_at",)
    with pytest.raises(TransitionError) as err:
        plan("close_duplicate", "delivered", dispatch_station="S1", actor_station="S1",
             duplicate_of="d1")
    assert err.value.code == "forbidden"  # no officer closes a clue this way
