"""Jurisdiction versions: which station answered for a cell, when ("generations", as in MapIt).

A generation is a set of cell → station assignments with the date they take
effect. The station in force for a cell at a time is the one of the latest
generation (by effective date, then number) effective at or before that time
that lists the cell: a generation need not list every cell, so importing one
county's file makes a generation of that county's cells only. A report is
routed by the assignment in force when it was made, not when it is routed.

Writing is crash-safe without multi-document transactions: `record_generation`
first claims the next number by inserting its `Generation` (the number is
unique, so two writers never share one), then inserts the rows in bulk, then
marks the generation complete in one single-document update. Readers ignore
incomplete generations, so a crash part-way leaves nothing half-visible (the
re-run takes the next number; the orphan rows are inert). Re-running with the
same effective date and the same assignments as the newest complete
generation returns that generation's number and writes nothing, so re-running
an import is harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import mongoengine as me

from grid.documents import utcnow

# Rows per insert_many: one round trip each.
_INSERT_BATCH = 5000
_CLAIM_ATTEMPTS = 50


class Jurisdiction(me.Document):
    """One cell's station in one generation."""

    generation = me.IntField(required=True)
    effective_from = me.DateTimeField(required=True)  # naive UTC, copied from the generation
    cell_code = me.StringField(required=True, max_length=15)
    station_code = me.StringField(required=True, max_length=32)

    meta = {
        "collection": "jurisdictions",
        "indexes": [
            {"fields": ["generation", "cell_code"], "unique": True},
            ("cell_code", "effective_from"),
        ],
    }


class Generation(me.Document):
    """One version of the jurisdictions; visible to readers once `completed_at` is set."""

    number = me.IntField(required=True, unique=True)
    effective_from = me.DateTimeField(required=True)  # naive UTC
    note = me.StringField(max_length=500, default="")
    created_at = me.DateTimeField(required=True, default=utcnow)
    completed_at = me.DateTimeField()  # rows all written
    # When GridCell.station_code was set from this generation (grid.importer):
    # at import for one already in force, by apply_due_generations for a future one.
    applied_at = me.DateTimeField()

    meta = {"collection": "jurisdiction_generations", "indexes": ["effective_from"]}


def naive_utc(when: dt.datetime) -> dt.datetime:
    """`when` as naive UTC (naive input is taken to be UTC already)."""
    if when.tzinfo is not None:
        return when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def station_at(history: Sequence[tuple[dt.datetime, str]], when: dt.datetime) -> str | None:
    """The station in force at `when` in a cell's history of (effective_from, station).

    The latest effective_from at or before `when` wins; on equal dates the
    later entry in `history` wins (give it in generation order). None before
    the first entry.
    """
    best: tuple[dt.datetime, str] | None = None
    for effective_from, station in history:
        if effective_from <= when and (best is None or effective_from >= best[0]):
            best = (effective_from, station)
    return best[1] if best is not None else None


def record_generation(
    assignments: Mapping[str, str],
    effective_from: dt.datetime,
    note: str = "",
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = _INSERT_BATCH,
) -> int:
    """Write a generation of cell → station assignments in force from `effective_from`.

    Returns its number. Idempotent for a re-run: when the newest complete
    generation has the same effective date and exactly these assignments,
    its number is returned and nothing is written. `progress(done, total)`
    is called after each bulk insert.
    """
    if not assignments:
        raise ValueError("a generation needs at least one cell → station assignment")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    effective_from = naive_utc(effective_from)
    newest = (Generation.objects(completed_at__ne=None)
              .order_by("-number").only("number", "effective_from").first())
    if (newest is not None and newest.effective_from == effective_from
            and _assignments(int(newest.number)) == dict(assignments)):
        return int(newest.number)
    number = _claim(effective_from, note)
    rows = Jurisdiction._get_collection()
    items = sorted(assignments.items())
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        rows.insert_many(
            [{"generation": number, "effective_from": effective_from,
              "cell_code": cell, "station_code": station} for cell, station in chunk],
            ordered=False,
        )
        if progress is not None:
            progress(start + len(chunk), len(items))
    Generation.objects(number=number).update_one(set__completed_at=utcnow())
    return number


def _claim(effective_from: dt.datetime, note: str) -> int:
    """Insert the next Generation (incomplete) and return its number."""
    for _ in range(_CLAIM_ATTEMPTS):
        last = Generation.objects.order_by("-number").only("number").first()
        number = int(last.number) + 1 if last is not None else 1
        try:
            Generation(number=number, effective_from=effective_from,
                       note=note[:500]).save(force_insert=True)
        except me.NotUniqueError:
            continue  # another writer took it: try the next one
        return number
    raise RuntimeError("could not claim a generation number (too many concurrent writers)")


def _assignments(number: int) -> dict[str, str]:
    cursor = Jurisdiction._get_collection().find(
        {"generation": number}, {"_id": 0, "cell_code": 1, "station_code": 1})
    return {str(row["cell_code"]): str(row["station_code"]) for row in cursor}


def _complete(until: dt.datetime | None = None) -> dict[int, dt.datetime]:
    """Complete generations (effective at or before `until`, when given): number → date."""
    query = Generation.objects(completed_at__ne=None)
    if until is not None:
        query = query.filter(effective_from__lte=until)
    return {int(g.number): g.effective_from for g in query.only("number", "effective_from")}


def stations_at(when: dt.datetime) -> dict[str, str]:
    """Every cell's station in force at `when` (cells no generation lists are absent)."""
    when = naive_utc(when)
    generations = _complete(when)
    if not generations:
        return {}
    best: dict[str, tuple[dt.datetime, int, str]] = {}
    cursor = Jurisdiction._get_collection().find(
        {"generation": {"$in": sorted(generations)}},
        {"_id": 0, "generation": 1, "cell_code": 1, "station_code": 1})
    for row in cursor:
        number = int(row["generation"])
        key = (generations[number], number, str(row["station_code"]))
        cell = str(row["cell_code"])
        held = best.get(cell)
        if held is None or key[:2] > held[:2]:
            best[cell] = key
    return {cell: station for cell, (_, _, station) in best.items()}


def history_of(cell_code: str) -> list[tuple[dt.datetime, str]]:
    """A cell's (effective_from, station) over complete generations, oldest first."""
    generations = _complete()
    rows = Jurisdiction._get_collection().find(
        {"cell_code": cell_code}, {"_id": 0, "generation": 1, "station_code": 1})
    found = sorted(
        (generations[int(r["generation"])], int(r["generation"]), str(r["station_code"]))
        for r in rows if int(r["generation"]) in generations
    )
    return [(effective_from, station) for effective_from, _, station in found]


def station_for(cell_code: str, when: dt.datetime) -> str | None:
    """The station in force for one cell at `when` (None: no generation says; use the cell's)."""
    return station_at(history_of(cell_code), naive_utc(when))


def latest_change(now: dt.datetime | None = None) -> dt.datetime | None:
    """Effective date of the newest complete generation in force at `now`, or None.

    Routing needs the history only for a report made before this: later
    reports are routed by GridCell.station_code, which holds what is in force.
    """
    generations = _complete(naive_utc(now) if now is not None else utcnow())
    return max(generations.values()) if generations else None


def due_generations(now: dt.datetime) -> list[int]:
    """Complete generations in force at `now` not yet applied to the cells, in effect order."""
    query = Generation.objects(completed_at__ne=None, applied_at=None,
                               effective_from__lte=naive_utc(now))
    found = sorted((g.effective_from, int(g.number))
                   for g in query.only("number", "effective_from"))
    return [number for _, number in found]


def mark_applied(number: int, when: dt.datetime | None = None) -> None:
    """Record that GridCell.station_code now reflects generation `number`."""
    Generation.objects(number=number).update_one(
        set__applied_at=naive_utc(when) if when is not None else utcnow())


def assignments_of(number: int) -> dict[str, str]:
    """The cell → station assignments of one generation."""
    return _assignments(number)
