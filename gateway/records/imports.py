"""Roster imports as stored: the job's progress and answers, and the files it holds a while.

An `Import` is what `POST /api/v1/imports` made: who uploaded, for which county,
the options, the state (`queued` → `running` → `done` or `failed`), the rows
done so far, the counts and the per-row answers (`ImportRows`, one document a
chunk of rows, so a 100,000-row answer never meets MongoDB's 16 MB limit).

`ImportFile` holds bytes that name people, sealed, for as short a time as
they are needed: the uploaded roster until the job has read it (the job deletes
it; `UPLOAD_TTL` is the backstop when no worker ever ran it), and the error
workbook until `ERRORS_TTL` after the import finished. Both carry `expires_at`
(a TTL index, and every read checks it too).
"""

from __future__ import annotations

import datetime as dt

import mongoengine as me

from grid.documents import utcnow

IMPORT_STATES = ("queued", "running", "done", "failed")
UPLOAD_TTL = dt.timedelta(hours=24)
ERRORS_TTL = dt.timedelta(days=7)
FILE_CONTEXT = "import.file"  # the sealing context of stored file pieces


class Import(me.Document):
    """One roster import by an admin, run as a job on the maintenance queue."""

    actor = me.StringField(required=True, max_length=100)  # the audit log's actor
    county_code = me.StringField(max_length=6)  # None: an operator's token, every county
    kind = me.StringField(choices=("units", "reporters", "officers"))
    dry_run = me.BooleanField(default=False)
    all_or_nothing = me.BooleanField(default=False)
    notify = me.BooleanField(default=False)
    state = me.StringField(choices=IMPORT_STATES, default="queued")
    rows_done = me.IntField(default=0)
    rows_total = me.IntField()
    summary = me.DictField()  # created, updated, unchanged, error
    warnings = me.ListField(me.StringField())
    problem = me.StringField()  # why the file could not be used (state failed)
    written = me.BooleanField(default=False)
    has_errors_file = me.BooleanField(default=False)
    created_at = me.DateTimeField(default=utcnow)
    finished_at = me.DateTimeField()

    meta = {"collection": "imports", "indexes": [("county_code", "-created_at")]}


class ImportRows(me.Document):
    """The per-row answers of one chunk of an import (ROSTER_FORMAT.md's objects)."""

    import_id = me.ObjectIdField(required=True)
    seq = me.IntField(required=True)
    rows = me.ListField(me.DictField())

    meta = {"collection": "import_rows",
            "indexes": [{"fields": ("import_id", "seq"), "unique": True}]}


class ImportFile(me.Document):
    """A piece of a file an import holds for a while (sealed): the upload, or the errors."""

    import_id = me.ObjectIdField(required=True)
    purpose = me.StringField(required=True, choices=("upload", "errors"))
    seq = me.IntField(required=True)
    data = me.StringField(required=True)  # base64 of the bytes, sealed under FILE_CONTEXT
    expires_at = me.DateTimeField(required=True)

    meta = {"collection": "import_files",
            "indexes": [("import_id", "purpose", "seq"),
                        {"fields": ["expires_at"], "expireAfterSeconds": 0}]}
