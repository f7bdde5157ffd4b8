"""Enrolment: mandated units, reporters, officers and stations, kept by administrators.

`checks` (who may act where, field problems with roster codes, digests for the
audit log), `units`, `people` (enrol, change, deactivate, reactivate, erase),
`stations`. The admin API and the `safegrid people|units` commands call the
same functions; every change is one single-document update, audited with
before/after digests, never clear values. May import floors 0–6.
"""
