"""`POST /api/v1/imports`: the upload kept sealed, a job on the maintenance queue, answers.

`start` stores the upload sealed (gateway/records/imports.py) and queues
`run_import(import_id)` on the `maintenance` queue; the job imports
(gateway/enrolment/imports.py), records progress once a chunk, stores the
per-row answers and, when rows failed, an error workbook (each bad row as it
was, and what to fix), then deletes the upload. Idempotent: a job that runs
again after finishing does nothing; one that died half way runs the import
again, which changes nothing already written (`unchanged`).

Who sees an import: the admin who uploaded it and the admins of its county
(operators, whose tokens name no county, see every import).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from gateway.delivery import queues
from gateway.enrolment import exports, imports, sheets
from gateway.enrolment.checks import Reach
from gateway.errors import Refusal
from gateway.privacy.crypto import keyring
from gateway.records.imports import (
    ERRORS_TTL,
    FILE_CONTEXT,
    UPLOAD_TTL,
    Import,
    ImportFile,
    ImportRows,
)
from grid.documents import utcnow

log = logging.getLogger(__name__)

PIECE = 4 * 1024 * 1024  # bytes a stored piece: sealed base64 stays far under 16 MB
JOB_TIMEOUT = 3600  # a 100,000-row import takes minutes on SecantusDB


def job_id(import_id: Any) -> str:
    return f"import-{import_id}"


def start(reach: Reach, data: bytes, *, kind: str | None, county: str | None, dry_run: bool,
          all_or_nothing: bool, notify: bool) -> Import:
    """Keep the upload (sealed) and queue its import; 413/422 for a file never worth a job."""
    if not data:
        raise Refusal(422, "the file is empty", {"fields": [
            {"field": "file", "code": "required", "message": "the file is empty"}]})
    if len(data) > sheets.MAX_BYTES:
        raise Refusal(413, f"the file is larger than {sheets.MAX_BYTES // (1024 * 1024)} MB")
    where = reach.county_for(county) if county or reach.county else None
    record = Import(actor=reach.actor, county_code=where, kind=kind, dry_run=dry_run,
                    all_or_nothing=all_or_nothing, notify=notify).save(force_insert=True)
    _keep(record.id, "upload", data, UPLOAD_TTL)
    queues.queue(queues.MAINTENANCE).enqueue(run_import, str(record.id),
                                             job_id=job_id(record.id),
                                             job_timeout=JOB_TIMEOUT, result_ttl=600)
    return record


def _keep(import_id: ObjectId, purpose: str, data: bytes, ttl: Any) -> None:
    ring = keyring()
    expires = utcnow() + ttl
    ImportFile._get_collection().insert_many([
        {"import_id": import_id, "purpose": purpose, "seq": seq, "expires_at": expires,
         "data": ring.encrypt(base64.b64encode(data[start:start + PIECE]).decode("ascii"),
                              context=FILE_CONTEXT)}
        for seq, start in enumerate(range(0, len(data), PIECE))])


def _kept(import_id: ObjectId, purpose: str) -> bytes | None:
    ring = keyring()
    pieces = list(ImportFile.objects(import_id=import_id, purpose=purpose,
                                     expires_at__gt=utcnow()).order_by("seq"))
    if not pieces:
        return None
    return b"".join(base64.b64decode(ring.decrypt(p.data, context=FILE_CONTEXT))
                    for p in pieces)


def run_import(import_id: str) -> str:
    """The job: import the kept upload once; idempotent (see the module's docstring)."""
    oid = ObjectId(import_id)
    record = Import.objects(id=oid, state__in=("queued", "running")).modify(
        new=True, set__state="running")
    if record is None:
        return "finished already"
    data = _kept(oid, "upload")
    reach = Reach(record.actor, record.county_code)
    try:
        if data is None:
            raise sheets.Unusable("the upload expired before a worker could import it")
        outcome = imports.import_roster(
            reach, data, kind=record.kind, county=record.county_code, dry_run=record.dry_run,
            all_or_nothing=record.all_or_nothing, notify=record.notify,
            progress=lambda done, total: Import.objects(id=oid).update_one(
                set__rows_done=done, set__rows_total=total))
    except (sheets.Unusable, Refusal) as exc:
        Import.objects(id=oid).update_one(set__state="failed", set__problem=str(exc),
                                          set__finished_at=utcnow())
        ImportFile.objects(import_id=oid, purpose="upload").delete()
        log.info("import %s: the file could not be used", import_id)
        return "failed"
    _answer(oid, outcome)
    ImportFile.objects(import_id=oid, purpose="upload").delete()  # names and phones: gone
    log.info("import %s done: %s", import_id, outcome.summary)
    return "done"


def _answer(oid: ObjectId, outcome: imports.Outcome) -> None:
    ImportRows.objects(import_id=oid).delete()  # a second run writes them again
    chunks = [outcome.results[i:i + imports.CHUNK]
              for i in range(0, len(outcome.results), imports.CHUNK)]
    if chunks:
        ImportRows._get_collection().insert_many(
            [{"import_id": oid, "seq": seq, "rows": rows} for seq, rows in enumerate(chunks)])
    if outcome.bad:
        ImportFile.objects(import_id=oid, purpose="errors").delete()
        _keep(oid, "errors", error_workbook(outcome.bad), ERRORS_TTL)
    Import.objects(id=oid).update_one(
        set__state="done", set__summary=outcome.summary, set__warnings=outcome.warnings,
        set__written=outcome.written, set__has_errors_file=bool(outcome.bad),
        set__finished_at=utcnow(), set__rows_done=len(outcome.results),
        set__rows_total=len(outcome.results))


def error_workbook(bad: list[sheets.Row]) -> bytes:
    """Each bad row as it was, with its row number and what to fix, one sheet a kind."""
    by_kind: dict[str, tuple[list[str], list[list[Any]]]] = {}
    for row in bad:
        head = ["row", *exports.header(row.sheet), "errors"]
        values = [row.values[c.key] for c in sheets.COLUMNS[row.sheet]]
        fix = "; ".join(f"{e['field']}: {e['message']} ({e['code']})" for e in row.errors)
        by_kind.setdefault(row.sheet, (head, []))[1].append([row.number, *values, fix])
    return exports.to_xlsx(dict(by_kind.items()))


def find(reach: Reach, import_id: str) -> Import:
    """An import the caller may see: their county's (operators: all); else 404."""
    try:
        oid = ObjectId(import_id)
    except (InvalidId, TypeError):
        raise Refusal(404, "no such import") from None
    record = Import.objects(id=oid).first()
    if record is None or not (reach.county is None or record.county_code == reach.county):
        raise Refusal(404, "no such import in your county")
    return record


def rows(record: Import, page: int) -> list[dict[str, Any]]:
    """The per-row answers, a page of `imports.CHUNK` rows (page 1 first)."""
    found = ImportRows.objects(import_id=record.id, seq=page - 1).first()
    return list(found.rows) if found is not None else []


def errors_file(reach: Reach, import_id: str) -> bytes:
    record = find(reach, import_id)
    data = _kept(record.id, "errors") if record.has_errors_file else None
    if data is None:
        raise Refusal(404, "this import has no error workbook (no row failed, or it expired)")
    return data
