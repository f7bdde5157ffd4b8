"""Enrolment: mandated units, reporters, officers and stations, kept by administrators.

`checks` (who may act where, field problems with roster codes, digests for the
audit log), `units`, `people` (enrol, change, deactivate, reactivate, erase),
`stations`; roster files: `sheets` (reading CSV and XLSX, pure), `imports`
(checking rows in bulk, writing in chunks, the welcome SMS), `import_jobs` (the
API's import as a job), `exports` (a county's roster as a file). The admin API
and the `safegrid people|units` commands call the same functions; every single
change is one single-document update (a roster import's reporters: one bulk
write a chunk), audited with before/after digests (an import: its counts),
never clear values. May import floors 0–6.
"""
