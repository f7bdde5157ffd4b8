"""The officer's pages: the station's inbox (overdue first), transfers waiting for an
answer, a dispatch with its reports, notes and history, and the acts on it.

Each act calls the same function the JSON API calls (gateway/delivery/workflow.py,
gateway/delivery/unlinking.py, gateway/custody/unsealing.py), as the logged-in person,
so visibility, the state machine's guards and the audit log are the API's. Reporters are
shown by role only; breaking the seal asks for a reason, warns first and is audited.
"""

from __future__ import annotations

import re
from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from gateway import gridcache
from gateway.console import words
from gateway.console.site import blp, config, page, page_error, session, signed_in
from gateway.console.words import N_
from gateway.custody import unsealing
from gateway.delivery import inbox, unlinking, workflow
from gateway.delivery.visibility import visible_dispatch
from gateway.errors import Refusal
from gateway.privacy.crypto import unseal
from gateway.records.reports import DISPATCH_TEXT_CONTEXT
from grid.documents import Dispatch, utcnow
from grid.escalation import OVERDUE_STATES
from grid.lifecycle import OUTCOMES, OUTCOMES_NEEDING_REASON

NOTE_MAX = 2000  # as the API's NoteInSchema
REASON_MAX = 500
UNSEAL_REASON_MIN = 10
INBOX_MAX = 200
PRIORITY_RANK = {"critical": 0, "urgent": 1, "routine": 2}
REPORT_CODE_MAX = 16  # as the API's UnlinkInSchema
DISPATCH_ID = re.compile(r"^[0-9a-f]{24}$")
# unlinking's 409s that are about the form, not the clue's state: said plainly.
UNLINK_REFUSALS = {"not_in_clue": N_("这条举报不在本线索中（可能已被拆分），没有拆分。"),
                   "only_report": N_("线索只剩这一条举报，不能拆分。")}


def overdue(dispatch: Dispatch) -> bool:
    """Past its acknowledgement deadline and still waiting (as the API's `overdue` filter)."""
    return (dispatch.status in OVERDUE_STATES and dispatch.acknowledged_at is None
            and dispatch.ack_deadline is not None and dispatch.ack_deadline <= utcnow())


def station_inbox(code: str) -> list[Dispatch]:
    """The station's open clues: overdue at the top, then by priority, newest first."""
    query = inbox.station_inbox(session().principal, code, {})
    open_ = [d for d in query.filter(status__ne="closed").limit(INBOX_MAX)]
    open_.sort(key=lambda d: (d.created_at or utcnow()), reverse=True)
    open_.sort(key=lambda d: (not overdue(d), PRIORITY_RANK.get(d.priority, 3)))
    return open_


def _inbox_context() -> dict[str, Any]:
    code = session().station_code or ""
    station = gridcache.current().stations.get(code)
    return {"dispatches": station_inbox(code),
            "transfers": list(inbox.station_transfers(session().principal, code).limit(50)),
            "station": station, "overdue": overdue, "now": utcnow()}


@blp.get("/inbox")
@signed_in("officer")
def inbox_page() -> Response:
    return page("inbox.html", **_inbox_context())


@blp.get("/inbox/rows")
@signed_in("officer", touch=False)
def inbox_rows() -> Response:
    """The inbox's lists alone, for the page's own refreshing (does not keep a session alive)."""
    return page("inbox_rows.html", **_inbox_context())


def sealed_text(value: str | None) -> str:
    """An officer's free text as stored (sealed), in clear for whoever may see the dispatch."""
    if not value:
        return ""
    return unseal(value, context=DISPATCH_TEXT_CONTEXT)


def _stations_for_transfer(dispatch: Dispatch) -> list[Any]:
    snapshot = gridcache.current()
    here = snapshot.stations.get(dispatch.station_code)
    county = here.county_code if here else None
    return sorted((s for s in snapshot.stations.values()
                   if s.county_code == county and s.code != dispatch.station_code and s.active),
                  key=lambda s: s.code)


def dispatch_page(dispatch_id: str, status: int = 200, **extra: Any) -> Response:
    principal = session().principal
    dispatch = visible_dispatch(principal, dispatch_id)
    reports = unsealing.read_reports(principal, dispatch_id)
    stations = gridcache.current().stations
    return page("dispatch.html", status, d=dispatch, reports=reports, stations=stations,
                notes=[{**n, "text": sealed_text(n.get("text"))} for n in dispatch.notes or []],
                history=list(reversed(dispatch.history or [])), overdue=overdue,
                holds=principal.role == "officer" and principal.station_code ==
                dispatch.station_code,
                offered=principal.station_code == dispatch.transfer_to,
                may_unlink=(principal.role == "supervisor" or principal.role == "officer"
                            and principal.station_code == dispatch.station_code)
                and dispatch.status != "closed" and len(reports) > 1,
                targets=_stations_for_transfer(dispatch), outcomes=OUTCOMES,
                needs_reason=sorted(OUTCOMES_NEEDING_REASON), sealed_text=sealed_text,
                note_max=NOTE_MAX, reason_max=REASON_MAX, **extra)


@blp.get("/dispatches/<dispatch_id>")
@signed_in("officer", "supervisor")
def dispatch(dispatch_id: str) -> Response:
    new = request.args.get("new", "")
    return dispatch_page(dispatch_id, done=request.args.get("done"),
                         new_clue=new if DISPATCH_ID.match(new) else None)


def _text(name: str, low: int, high: int) -> str | None:
    """A free-text field of the form, stripped, or None when empty or longer than `high`."""
    value = request.form.get(name, "").strip()
    return value if low <= len(value) <= high else None


def _invalid(dispatch_id: str, message: str) -> Response:
    """The dispatch page again, saying what was wrong with the form; nothing was changed."""
    return dispatch_page(dispatch_id, 422, problem=words.translation(
        session().language).gettext(message))


def _done(dispatch_id: str, what: str) -> Response:
    return redirect(url_for("console.dispatch", dispatch_id=dispatch_id, done=what), code=303)


def _act(dispatch_id: str, action: str, **inputs: Any) -> None:
    workflow.act(session().principal, dispatch_id, action, **inputs)


@blp.post("/dispatches/<dispatch_id>/acknowledge")
@signed_in("officer")
def acknowledge(dispatch_id: str) -> Response:
    _act(dispatch_id, "acknowledge")
    return _done(dispatch_id, "acknowledge")


@blp.post("/dispatches/<dispatch_id>/note")
@signed_in("officer")
def note(dispatch_id: str) -> Response:
    text = _text("text", 1, NOTE_MAX)
    if text is None:
        return _invalid(dispatch_id, N_("备注不能为空，最多2000字，没有保存。"))
    _act(dispatch_id, "note", reason=text)
    return _done(dispatch_id, "note")


@blp.post("/dispatches/<dispatch_id>/transfer")
@signed_in("officer")
def transfer(dispatch_id: str) -> Response:
    target = request.form.get("to_station", "").strip()[:32]
    reason = _text("reason", 1, REASON_MAX)
    station = gridcache.current().stations.get(target)
    if station is None or not station.active:
        return _invalid(dispatch_id, N_("没有这个派出所，线索没有移交。"))
    if reason is None:
        return _invalid(dispatch_id, N_("请写明移交原因（最多500字），线索没有移交。"))
    _act(dispatch_id, "request_transfer", target_station=target, reason=reason)
    return _done(dispatch_id, "transfer")


@blp.post("/dispatches/<dispatch_id>/accept-transfer")
@signed_in("officer")
def accept_transfer(dispatch_id: str) -> Response:
    _act(dispatch_id, "accept_transfer")
    return _done(dispatch_id, "accept_transfer")


@blp.post("/dispatches/<dispatch_id>/reject-transfer")
@signed_in("officer")
def reject_transfer(dispatch_id: str) -> Response:
    reason = _text("reason", 1, REASON_MAX)
    if reason is None:
        return _invalid(dispatch_id, N_("请写明拒绝原因（最多500字）。"))
    _act(dispatch_id, "reject_transfer", reason=reason)
    return redirect(url_for("console.inbox_page"), code=303)


@blp.post("/dispatches/<dispatch_id>/close")
@signed_in("officer")
def close(dispatch_id: str) -> Response:
    outcome = request.form.get("outcome", "")
    reason = _text("reason", 0, REASON_MAX)
    if outcome not in OUTCOMES:
        return _invalid(dispatch_id, N_("请选择处理结果。"))
    if reason is None:
        return _invalid(dispatch_id, N_("结案说明最多500字。"))
    if outcome in OUTCOMES_NEEDING_REASON and not reason:
        return _invalid(dispatch_id, N_("这个处理结果需要写明原因。"))
    _act(dispatch_id, "close", outcome=outcome, reason=reason or None)
    return _done(dispatch_id, "close")


@blp.post("/dispatches/<dispatch_id>/reopen")
@signed_in("officer")
def reopen(dispatch_id: str) -> Response:
    """Work a closed clue of the station again, with the reason (as the API's reopen)."""
    reason = _text("reason", 1, REASON_MAX)
    if reason is None:
        return _invalid(dispatch_id, N_("重新打开须写明原因（最多500字），线索没有重新打开。"))
    _act(dispatch_id, "reopen", reason=reason)
    return _done(dispatch_id, "reopen")


@blp.post("/dispatches/<dispatch_id>/unlink")
@signed_in("officer", "supervisor")
def unlink(dispatch_id: str) -> Response:
    """Take a report that is another incident out of the clue (as the API's unlink): it
    becomes a clue of its own at the same station, its deadline still running."""
    report = request.form.get("report", "").strip()
    reason = _text("reason", 1, REASON_MAX)
    if not report or len(report) > REPORT_CODE_MAX:
        return _invalid(dispatch_id, N_("请选择要拆分的举报。"))
    if reason is None:
        return _invalid(dispatch_id, N_("拆分须写明原因（最多500字），举报没有拆分。"))
    try:
        _, own = unlinking.unlink(session().principal, dispatch_id, report, reason)
    except Refusal as refused:
        code = refused.errors.get("code") if isinstance(refused.errors, dict) else None
        if refused.status == 409 and code in UNLINK_REFUSALS:
            return dispatch_page(dispatch_id, 409, problem=words.translation(
                session().language).gettext(UNLINK_REFUSALS[code]))
        raise
    return redirect(url_for("console.dispatch", dispatch_id=dispatch_id, done="unlink",
                            new=str(own.id)), code=303)


@blp.post("/dispatches/<dispatch_id>/unseal")
@signed_in("officer", "supervisor")
def break_glass(dispatch_id: str) -> Response:
    reason = _text("reason", UNSEAL_REASON_MIN, REASON_MAX)
    if reason is None or request.form.get("understood") != "yes":
        return _invalid(dispatch_id, N_("破封须写明理由（10至500字）并确认已知晓将被记录。"))
    # Counted against the same per-person limit as the API's, in the custody room.
    people = unsealing.unseal(session().principal, dispatch_id, reason, config(), request.path)
    return dispatch_page(dispatch_id, identities=people)


@blp.get("/transfers")
@signed_in("officer")
def transfers_page() -> Response:
    return redirect(url_for("console.inbox_page") + "#transfers", code=303)


def station_name(code: str | None) -> str:
    if not code:
        return ""
    info = gridcache.current().stations.get(code)
    return info.name if info else code


@blp.app_template_filter("station_name")
def _station_name_filter(code: str | None) -> str:
    return station_name(code)


@blp.get("/dispatches/")
@signed_in("officer", "supervisor")
def no_dispatch() -> Response:
    return page_error(404, N_("没有找到这条线索。"))
