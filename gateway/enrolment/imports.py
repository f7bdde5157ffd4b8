"""Importing a roster file: rows checked against the county in bulk, written in chunks.

ROSTER_FORMAT.md is the contract. The file is read by gateway/enrolment/sheets.py;
here each row is checked and written:

- **Reporters** (the big rosters) are checked against what is loaded once per
  import (the county's cells, units, and every officer's phone blind index),
  then in chunks of `CHUNK` rows: one query finds the chunk's phones among
  reporters, one `bulk_write` stores the new and changed ones. A stored
  reporter is `unchanged` when name, role, unit, cell and language are equal
  (the sealed name is opened only for phones already on file).
- **Units and officers** (a few hundred a county) go through the same rules as
  the admin API (gateway/enrolment/units.py, people.py), one row at a time.
- The phone is the key: re-importing a file changes nothing (`unchanged`).
  A deactivated reporter stays deactivated (that is an admin's act, not a
  spreadsheet's); an erased one's phone is free and enrols anew.
- `all_or_nothing`: every row is checked first and nothing is written if one
  fails. `dry_run`: checked, never written. Without either, good rows land.
- One audit entry per import with the counts, never a value; logs name no
  phone and no person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from gateway.delivery.outbound_sms import queue_sms
from gateway.enrolment import people, units
from gateway.enrolment.checks import Problems, Reach
from gateway.enrolment.sheets import Row, Sheet, read
from gateway.errors import Refusal
from gateway.privacy import audit, phonebook
from gateway.privacy.crypto import keyring
from gateway.records.people import LANGUAGES, Officer, Reporter
from gateway.records.units import Unit
from grid.documents import GridCell, utcnow
from sms import replies

log = logging.getLogger(__name__)

CHUNK = 1_000
NAME_CONTEXT = "reporter.name"
COMPARED = ("name", "role", "unit", "home_cell", "language")
Progress = Callable[[int, int], None]


@dataclass
class Outcome:
    """What an import did (or would do): one result a data row, the counts, the warnings."""

    results: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: bool = False
    bad: list[Row] = field(default_factory=list)  # the rows with errors, values included

    @property
    def summary(self) -> dict[str, int]:
        counts = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
        for result in self.results:
            counts[result["status"]] += 1
        return counts

    @property
    def failed(self) -> bool:
        return any(r["status"] == "error" for r in self.results)


@dataclass
class _County:
    """What rows are checked against, loaded once per import."""

    code: str
    cells: dict[str, str]  # grid code → name
    units: dict[str, tuple[str, str]]  # unit code → (name, cell)
    unit_names: dict[str, list[str]]  # name → codes
    officer_phones: set[str]  # blind indexes

    @classmethod
    def load(cls, county: str) -> _County:
        cells = {c["code"]: c.get("name", c["code"]) for c in GridCell._get_collection().find(
            {"county_code": county}, {"code": 1, "name": 1, "_id": 0})}
        found: dict[str, tuple[str, str]] = {}
        names: dict[str, list[str]] = {}
        for u in Unit._get_collection().find({"county_code": county, "active": {"$ne": False}},
                                             {"code": 1, "name": 1, "cell_code": 1}):
            found[u["code"]] = (u["name"], u["cell_code"])
            names.setdefault(u["name"], []).append(u["code"])
        officers = {o["phone_index"] for o in Officer._get_collection().find(
            {"phone_index": {"$type": "string"}}, {"phone_index": 1, "_id": 0})}
        return cls(county, cells, found, names, officers)


def import_roster(reach: Reach, data: bytes, *, kind: str | None = None,
                  county: str | None = None, dry_run: bool = False,
                  all_or_nothing: bool = False, notify: bool = False,
                  progress: Progress | None = None) -> Outcome:
    """Import a roster file for `reach`; raises Unusable (file) or Refusal (county).

    Idempotent: the same file again gives `unchanged` rows and writes nothing.
    """
    sheets = read(data, kind)
    outcome = Outcome(warnings=[w for s in sheets for w in s.warnings])
    needs_county = any(s.kind in ("units", "reporters") for s in sheets)
    where = reach.county_for(county) if needs_county or county else None
    total = sum(len(s.rows) for s in sheets)
    write = not dry_run
    if all_or_nothing and not dry_run:  # check everything first, write only if all is well
        checked = Outcome()
        for sheet in sheets:
            for _ in _import_sheet(reach, sheet, where, checked, write=False, notify=False):
                pass
        if checked.failed:
            outcome.results = checked.results
            outcome.bad = [row for s in sheets for row in s.rows if row.errors]
            _audit(reach, where, sheets, outcome, dry_run, all_or_nothing)
            return outcome
    done = 0
    for sheet in sheets:
        for count in _import_sheet(reach, sheet, where, outcome, write=write, notify=notify):
            done += count
            if progress is not None:
                progress(done, total)
    outcome.written = write
    outcome.bad = [row for s in sheets for row in s.rows if row.errors]
    _audit(reach, where, sheets, outcome, dry_run, all_or_nothing)
    log.info("roster import: %s", outcome.summary)  # counts only: no actor label, no value
    return outcome


def _audit(reach: Reach, county: str | None, sheets: list[Sheet], outcome: Outcome,
           dry_run: bool, all_or_nothing: bool) -> None:
    audit.append(reach.actor, "roster.import", f"county:{county or 'all'}", {
        "kinds": [s.kind for s in sheets], **outcome.summary, "written": outcome.written,
        "dry_run": dry_run, "all_or_nothing": all_or_nothing})


def _import_sheet(reach: Reach, sheet: Sheet, county: str | None, outcome: Outcome, *,
                  write: bool, notify: bool) -> Iterator[int]:
    if sheet.kind == "reporters":
        assert county is not None  # noqa: S101 (import_roster asked for it)
        yield from _reporters(reach, sheet.rows, _County.load(county), outcome,
                              write=write, notify=notify)
    else:
        one = _unit_row if sheet.kind == "units" else _officer_row
        seen: set[str] = set()
        for start in range(0, len(sheet.rows), CHUNK):
            for row in sheet.rows[start:start + CHUNK]:
                outcome.results.append(_result(row, one(reach, row, county, seen, write)))
            yield len(sheet.rows[start:start + CHUNK])


def _result(row: Row, status: str) -> dict[str, Any]:
    result: dict[str, Any] = {"sheet": row.sheet, "row": row.number,
                              "status": "error" if row.errors else status}
    if row.errors:
        result["errors"] = row.errors
    return result


def _refused(row: Row, exc: Refusal) -> str:
    for problem in (exc.errors or {}).get("fields", []) or [
            {"field": "row", "code": "invalid", "message": exc.message}]:
        row.error(problem["field"], problem["code"], problem["message"])
    return "error"


# --- units and officers: the admin API's rules, a row at a time -----------------------------


def _unit_row(reach: Reach, row: Row, county: str | None, seen: set[str], write: bool) -> str:
    v = row.values
    if row.errors:
        return "error"
    code = v["code"] or ""
    if code in seen:
        row.error("code", "duplicate_in_file", "a unit code seen in an earlier row")
        return "error"
    seen.add(code)
    data = {"code": code, "name": v["name"], "type": v["type"], "cell_code": v["grid_code"]}
    try:
        current = Unit.objects(code=code).first() if code else None
        values = units._changes(Reach(reach.actor, county), data, creating=True)
        if current is not None and current.county_code != county:
            row.error("code", "code_taken", "a unit of another county has this code")
            return "error"
        if current is not None and all(getattr(current, k) == values[k] for k in values):
            return "unchanged"
        if write:
            if current is None:
                units.enrol_unit(Reach(reach.actor, county), data)
            else:
                units.change_unit(reach, code, {k: data[k] for k in ("name", "type",
                                                                      "cell_code")})
    except Refusal as exc:
        return _refused(row, exc)
    return "created" if current is None else "updated"


def _officer_row(reach: Reach, row: Row, county: str | None, seen: set[str],
                 write: bool) -> str:
    v = row.values
    if row.errors:
        return "error"
    data = {"name": v["name"], "phone": v["phone"], "duty_role": v["role"],
            "station_code": v["station"], "county_code": v["county"]}
    try:
        where = reach.county_for(v["county"])
        if county and where != county:
            row.error("county", "invalid", f"this import is for county {county}")
            return "error"
        number = Problems().phone("phone", v["phone"])
        current = Officer.by_phone(number).first() if number else None
        if number in seen:
            row.error("phone", "duplicate_in_file", "a phone seen in an earlier row")
            return "error"
        seen.add(number or "")
        values = people._officer_changes(data, where, current)
        if current is not None:
            stored = {**people.view(current), "role": current.role}
            if all(stored.get(k) == val for k, val in values.items()):
                return "unchanged"
        if write:
            if current is None:
                people.enrol_officer(reach, data)
            else:
                people.change_officer(reach, str(current.id), data)
    except Refusal as exc:
        return _refused(row, exc)
    return "created" if current is None else "updated"


# --- reporters: in bulk ------------------------------------------------------------------


@dataclass
class _Planned:
    row: Row
    index: str  # phone blind index
    phone: str
    county: str
    values: dict[str, Any]
    status: str = "created"
    existing: ObjectId | None = None
    tipster: bool = False


def _check_reporter(row: Row, county: _County) -> _Planned | None:
    """A row's values checked against the county (no query); None when it has errors."""
    v = row.values
    problems = Problems(row.errors)
    problems.text("name", v["name"], required=True)
    phone = None
    if not any(e["field"] == "phone" for e in row.errors):
        phone = problems.phone("phone", v["phone"])
    problems.choice("role", v["role"], people.ENROLLED_ROLES, "unknown_role", required=True)
    language = v["language"] or "zh"
    problems.choice("language", language, LANGUAGES, "unknown_language")
    unit = v["unit"]
    if unit is not None and unit not in county.units:
        codes = county.unit_names.get(unit, [])
        if len(codes) == 1:
            unit = codes[0]
        else:
            problems.add("unit", "unknown_unit", f"no unit with this code in county "
                         f"{county.code}" + (" (that name matches several: give the code)"
                                             if codes else ""))
    cell = v["grid_code"]
    if cell is not None and cell not in county.cells:
        problems.add("grid_code", "unknown_cell", f"no grid cell with this code in county "
                     f"{county.code}")
    if v["role"] == "grid_worker" and not cell:
        problems.add("grid_code", "required", "a grid worker needs the home grid cell")
    if row.errors or phone is None:
        return None
    values = {"name": v["name"], "role": v["role"], "unit": unit, "home_cell": cell,
              "language": language}
    return _Planned(row, phonebook.phone_index(phone), phone, county.code, values)


def _reporters(reach: Reach, rows: list[Row], county: _County, outcome: Outcome, *,
               write: bool, notify: bool) -> Iterator[int]:
    seen: set[str] = set()
    collection = Reporter._get_collection()
    on_file = _on_file(collection, county.code)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        planned: list[_Planned] = []
        for row in chunk:
            plan = _check_reporter(row, county)
            if plan is None:
                continue
            if plan.index in seen:
                row.error("phone", "duplicate_in_file", "a phone seen in an earlier row; "
                          "the first row wins")
            elif plan.index in county.officer_phones:
                row.error("phone", "phone_taken", "the phone belongs to an officer's account "
                          "(reporter and officer accounts need distinct phones)")
            else:
                planned.append(plan)
            seen.add(plan.index)
        _compare(planned, on_file)
        if write:
            _write(collection, planned)
            if notify:
                _welcome(planned, county)
        else:  # nothing is inserted: ask about the phones new to this county now
            _elsewhere(collection, [p for p in planned if p.existing is None])
        outcome.results.extend(_result(row, "") for row in chunk if row.errors)
        outcome.results.extend(_result(p.row, p.status) for p in planned if not p.row.errors)
        if write:  # a written row's values are not needed again (only bad rows' are)
            for row in chunk:
                if not row.errors:
                    row.values.clear()
        yield len(chunk)
    outcome.results.sort(key=lambda r: (r["sheet"], r["row"]))


def _on_file(collection: Any, county: str) -> dict[str, dict[str, Any]]:
    """The county's reporters by phone blind index, in one query (names still sealed).

    One scan of the county instead of a `$in` a chunk: on SecantusDB a `$in` of
    1,000 blind indexes costs ~0.9 s, the county's scan ~35 µs a reporter.
    """
    wanted = {"phone_index": 1, **{k: 1 for k in COMPARED}}
    return {doc["phone_index"]: doc for doc in collection.find(
        {"county_code": county, "role": {"$ne": "public"}}, wanted)}


def _compare(planned: list[_Planned], on_file: dict[str, dict[str, Any]]) -> None:
    """Phones already on file in the county: `updated` or `unchanged`."""
    ring = keyring()
    for plan in planned:
        doc = on_file.get(plan.index)
        if doc is None:
            continue
        plan.existing = doc["_id"]
        stored = {k: doc.get(k) for k in COMPARED}
        if stored["name"]:
            stored["name"] = ring.decrypt(stored["name"], context=NAME_CONTEXT)
        stored["language"] = stored["language"] or "zh"
        plan.status = "unchanged" if stored == plan.values else "updated"


def _elsewhere(collection: Any, plans: list[_Planned]) -> list[_Planned]:
    """Phones not on file in this county but held elsewhere: a tipster's record (it becomes
    this reporter) or another county's reporter (phone_taken). Returns the tipsters."""
    if not plans:
        return []
    by_index = {p.index: p for p in plans}
    tipsters = []
    for doc in collection.find({"phone_index": {"$in": list(by_index)}},
                               {"phone_index": 1, "role": 1}, batch_size=len(by_index)):
        plan = by_index[doc["phone_index"]]
        plan.existing = doc["_id"]
        if doc.get("role") == "public":
            plan.tipster = True
            tipsters.append(plan)
        else:
            plan.row.error("phone", "phone_taken", "a reporter of another county has this "
                           "phone (deactivate there, then import here)")
    return tipsters


def _write(collection: Any, planned: list[_Planned]) -> None:
    """One bulk write for the chunk's new and changed reporters (unordered).

    A new phone that another record holds (another county's reporter, a tipster)
    fails its insert on the unique blind index; only those are looked up, and a
    tipster's record becomes the reporter (it keeps the tips it sent)."""
    todo = [p for p in planned if not p.row.errors and p.status != "unchanged"]
    failed = _bulk(collection, todo)
    if not failed:
        return
    for plan in failed:
        plan.existing = None
    tipsters = _elsewhere(collection, failed)
    for plan in failed:
        if plan.existing is None:  # gone again meanwhile, or a concurrent enrolment
            plan.row.error("phone", "phone_taken", people.ENROLLED_MEANWHILE)
    for plan in _bulk(collection, tipsters):
        plan.row.error("phone", "phone_taken", people.ENROLLED_MEANWHILE)


def _bulk(collection: Any, todo: list[_Planned]) -> list[_Planned]:
    """Insert or update `todo` in one unordered bulk write; the plans whose write failed."""
    ring = keyring()
    now = utcnow()
    ops: list[Any] = []
    for plan in todo:
        sealed = {**plan.values, "name": ring.encrypt(plan.values["name"], context=NAME_CONTEXT)}
        values = {k: v for k, v in sealed.items() if v is not None}
        unset = {k: True for k, v in sealed.items() if v is None}
        if plan.existing is None:
            plan.existing = ObjectId()
            ops.append(InsertOne({
                "_id": plan.existing,
                "phone": phonebook.seal(plan.phone, phonebook.REPORTER_PHONE),
                "phone_index": plan.index, **values, "county_code": plan.county,
                "active": True, "created_at": now, "updated_at": now}))
            continue
        guard: dict[str, Any] = {"_id": plan.existing, "erased_at": None}
        if plan.tipster:
            guard["role"] = "public"
            values.update(county_code=plan.county, active=True)
        update: dict[str, Any] = {"$set": {**values, "updated_at": now}}
        if unset:
            update["$unset"] = unset
        ops.append(UpdateOne(guard, update))
    if not ops:
        return []
    try:
        collection.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        return [todo[error["index"]] for error in exc.details.get("writeErrors", [])]
    return []


def _welcome(planned: list[_Planned], county: _County) -> None:
    """The welcome SMS to each reporter this chunk enrolled, in their language (once each)."""
    for plan in planned:
        if plan.row.errors or plan.status != "created":
            continue
        unit = county.units.get(plan.values["unit"] or "")
        cell = plan.values["home_cell"] or (unit[1] if unit else None)
        queue_sms(plan.phone, replies.welcome(county.cells.get(cell or "", cell or county.code),
                                              unit[0] if unit else None,
                                              lang=plan.values["language"]),
                  "welcome", f"welcome-{plan.existing}")


def send_welcome(reach: Reach, reporter_id: str) -> bool:
    """The welcome SMS again, to one active reporter (the admin API's button); False when
    SMS is off here or the same was queued this minute (a double click sends once)."""
    reporter = people.get_reporter(reach, reporter_id)
    if not reporter.active or reporter.erased_at is not None or not reporter.phone:
        raise Refusal(409, "only an active reporter is welcomed")
    unit = Unit.objects(code=reporter.unit).first() if reporter.unit else None
    cell_code = reporter.home_cell or (unit.cell_code if unit else None)
    cell = GridCell.objects(code=cell_code).only("name").first() if cell_code else None
    text = replies.welcome(cell.name if cell else (cell_code or str(reporter.county_code)),
                           unit.name if unit else None, lang=reporter.language)
    return queue_sms(reporter.phone, text, "welcome",
                     f"welcome-{reporter.id}-{utcnow():%Y%m%d%H%M}")
