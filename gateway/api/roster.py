"""The roster: mandated units, reporters and officers, kept by the county's administrators.

Admins of a county enrol them and see their names and phones (each read of a
reporter is audited: names and phones are sealed); an admin token without a
county is the platform operators' and reaches every county. A station's chief
and the county supervisor list its officers, names only. The rules live in
gateway/enrolment/people.py and gateway/enrolment/units.py.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Response
from flask.views import MethodView
from marshmallow import Schema, fields, validate
from mongoengine.queryset import QuerySet

from gateway.access.tokens import current_principal, require
from gateway.api.dispatches import PagedBlueprint, QuerySetPage
from gateway.api.schemas import StrictSchema, UtcDateTime, error_responses
from gateway.enrolment import exports, import_jobs, imports, people, sheets, units
from gateway.enrolment.checks import Reach
from gateway.records.imports import Import
from gateway.records.people import DUTY_ROLES, LANGUAGES, Officer, Reporter
from gateway.records.units import UNIT_TYPES, Unit

blp = PagedBlueprint("roster", __name__, description="Mandated units, reporters and officers, "
                                                    "kept by the county's administrators")
ENROLLED = list(people.ENROLLED_ROLES)
PHONE = {"description": "a mobile number; stored sealed, found by its blind index"}


def _reach() -> Reach:
    return Reach.of(current_principal())


class ReporterQuerySchema(StrictSchema):
    county = fields.String(validate=validate.Length(6, 6))
    cell = fields.String(validate=validate.Length(1, 15))
    unit = fields.String(validate=validate.Length(1, 40))
    role = fields.String(validate=validate.OneOf(ENROLLED))
    active = fields.Boolean()


class ReporterInSchema(StrictSchema):
    name = fields.String(required=True, metadata={"description": "at most 100 characters"})
    phone = fields.String(required=True, metadata=PHONE)
    role = fields.String(required=True, metadata={"enum": ENROLLED})
    unit = fields.String(allow_none=True, metadata={
        "description": "a unit's code, or its exact name where that is unique in the county"})
    home_cell = fields.String(allow_none=True, metadata={
        "description": "grid code of the home cell (required for grid workers)"})
    language = fields.String(metadata={"enum": list(LANGUAGES), "description": "zh default"})
    organisation = fields.String(allow_none=True)
    county_code = fields.String(metadata={
        "description": "6-digit adcode; an admin of one county may leave it out"})


def optional(schema: type[Schema], name: str) -> type[Schema]:
    """`schema` with every field optional: the body of a PATCH."""
    loose = {}
    for field_name, field in schema._declared_fields.items():
        loose[field_name] = copy.copy(field)
        loose[field_name].required = False
    return type(name, (StrictSchema,), loose)


ReporterPatchSchema = optional(ReporterInSchema, "ReporterPatchSchema")


class ReporterOutSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    role = fields.String(required=True)
    unit = fields.String(allow_none=True)
    home_cell = fields.String(allow_none=True)
    language = fields.String()
    organisation = fields.String(allow_none=True)
    county_code = fields.String(allow_none=True)
    active = fields.Boolean()
    erased = fields.Function(lambda r: r.erased_at is not None, metadata={"type": "boolean"})
    created_at = UtcDateTime(allow_none=True)
    updated_at = UtcDateTime(allow_none=True)


class OfficerQuerySchema(StrictSchema):
    county = fields.String(validate=validate.Length(6, 6))
    station = fields.String(validate=validate.Length(1, 32))
    role = fields.String(validate=validate.OneOf(list(DUTY_ROLES)))
    active = fields.Boolean()


class OfficerInSchema(StrictSchema):
    name = fields.String(required=True, metadata={"description": "at most 100 characters"})
    phone = fields.String(required=True, metadata=PHONE)
    duty_role = fields.String(required=True, metadata={"enum": list(DUTY_ROLES)})
    station_code = fields.String(allow_none=True, metadata={
        "description": "required for officer, duty_officer, chief and county_desk"})
    county_code = fields.String(metadata={
        "description": "6-digit adcode; an admin of one county may leave it out"})


OfficerPatchSchema = optional(OfficerInSchema, "OfficerPatchSchema")


def _phone_for_admins(officer: Officer) -> str | None:
    return officer.phone if current_principal().role == "admin" else None


class OfficerOutSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    phone = fields.Function(_phone_for_admins, metadata={
        "type": "string", "nullable": True,
        "description": "admins only; colleagues see names, not phones"})
    duty_role = fields.Function(lambda o: o.duty, metadata={"type": "string"})
    role = fields.String(metadata={"description": "the access role its tokens carry"})
    station_code = fields.String(allow_none=True)
    county_code = fields.String()
    active = fields.Boolean()
    erased = fields.Function(lambda o: o.erased_at is not None, metadata={"type": "boolean"})
    updated_at = UtcDateTime(allow_none=True)


REPORTER = ReporterOutSchema()
OFFICER = OfficerOutSchema()


class WelcomeOutSchema(Schema):
    queued = fields.Boolean(required=True, metadata={
        "description": "false when SMS is off here or the same was queued this minute"})


class ImportFormSchema(StrictSchema):
    kind = fields.String(validate=validate.OneOf(sheets.KINDS), metadata={
        "description": "units, reporters or officers (a CSV needs it)"})
    county = fields.String(validate=validate.Length(6, 6), metadata={
        "description": "6-digit adcode; an admin of one county may leave it out"})
    dry_run = fields.Boolean(load_default=False)
    all_or_nothing = fields.Boolean(load_default=False)
    notify = fields.Boolean(load_default=False, metadata={
        "description": "text each new reporter the welcome SMS"})


class ImportFileSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class ImportPageSchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1000), metadata={
        "description": f"the per-row answers, {imports.CHUNK} a page"})


class ImportOutSchema(Schema):
    id = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": ["queued", "running", "done",
                                                             "failed"]})
    kind = fields.String(allow_none=True)
    county_code = fields.String(allow_none=True)
    dry_run = fields.Boolean()
    all_or_nothing = fields.Boolean()
    notify = fields.Boolean()
    rows_done = fields.Integer()
    rows_total = fields.Integer(allow_none=True)
    summary = fields.Dict(keys=fields.String(), values=fields.Integer())
    warnings = fields.List(fields.String())
    problem = fields.String(allow_none=True, metadata={
        "description": "why the file could not be used (state failed)"})
    written = fields.Boolean()
    has_errors_file = fields.Boolean(metadata={
        "description": "an error workbook waits at /api/v1/imports/<id>/errors"})
    created_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    rows = fields.List(fields.Dict(), metadata={"description": "ROSTER_FORMAT.md's objects"})


class ExportQuerySchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(sheets.KINDS))
    format = fields.String(load_default="xlsx", validate=validate.OneOf(exports.FORMATS))
    county = fields.String(validate=validate.Length(6, 6))


IMPORT = ImportOutSchema()


@blp.route("/reporters")
class Reporters(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 422)
    @blp.arguments(ReporterQuerySchema, location="query")
    @blp.response(200, ReporterOutSchema(many=True))
    @blp.paginate(QuerySetPage)
    def get(self, query: dict[str, Any]) -> QuerySet:
        """Reporters of your county, with names and phones (audited); filter and page."""
        return people.list_reporters(_reach(), query)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 409, 415, 422)
    @blp.arguments(ReporterInSchema)
    @blp.response(201, REPORTER)
    def post(self, data: dict[str, Any]) -> Reporter:
        """Enrol a reporter (422 names each bad field with a code: phone_taken, unknown_unit…)."""
        return people.enrol_reporter(_reach(), data)


@blp.route("/reporters/<string:reporter_id>")
class OneReporter(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, REPORTER)
    def get(self, reporter_id: str) -> Reporter:
        """One reporter of your county, with name and phone (audited)."""
        return people.read_reporter(_reach(), reporter_id)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(ReporterPatchSchema)
    @blp.response(200, REPORTER)
    def patch(self, data: dict[str, Any], reporter_id: str) -> Reporter:
        """Change a reporter's fields (audited with before/after digests)."""
        return people.change_reporter(_reach(), reporter_id, data)


def _reporter_action(reporter_id: str, action: str) -> Reporter:
    reach = _reach()
    person = people.get_reporter(reach, reporter_id)
    if action == "erase":
        return people.erase(reach, person)
    return people.set_active(reach, person, action == "reactivate")


def _officer_action(officer_id: str, action: str) -> Officer:
    reach = _reach()
    person = people.get_officer(reach, officer_id)
    if action == "erase":
        return people.erase(reach, person)
    return people.set_active(reach, person, action == "reactivate")


@blp.route("/reporters/<string:reporter_id>/deactivate")
class DeactivateReporter(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, REPORTER)
    def post(self, reporter_id: str) -> Reporter:
        """Deactivate: every token revoked at once; reports kept; SMS become public tips."""
        return _reporter_action(reporter_id, "deactivate")


@blp.route("/reporters/<string:reporter_id>/reactivate")
class ReactivateReporter(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409)
    @blp.response(200, REPORTER)
    def post(self, reporter_id: str) -> Reporter:
        """Reactivate a deactivated reporter (not an erased one: 409)."""
        return _reporter_action(reporter_id, "reactivate")


@blp.route("/reporters/<string:reporter_id>/erase")
class EraseReporter(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409)
    @blp.response(200, REPORTER)
    def post(self, reporter_id: str) -> Reporter:
        """Erase on request (PIPL): name, phone and credentials wiped, role kept; irreversible.

        409 while a legal hold covers one of the reporter's reports."""
        return _reporter_action(reporter_id, "erase")


@blp.route("/officers")
class Officers(MethodView):
    @require("admin", "supervisor", "officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 422)
    @blp.arguments(OfficerQuerySchema, location="query")
    @blp.response(200, OfficerOutSchema(many=True))
    @blp.paginate(QuerySetPage)
    def get(self, query: dict[str, Any]) -> QuerySet:
        """Officers: an admin's county; a supervisor's county; a chief's station (names only)."""
        principal = current_principal()
        if principal.role == "admin":
            return people.list_officers(_reach(), query)
        return people.officers_seen_by(principal, query)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 409, 415, 422)
    @blp.arguments(OfficerInSchema)
    @blp.response(201, OFFICER)
    def post(self, data: dict[str, Any]) -> Officer:
        """Enrol an officer with a duty role (its access role follows: docs/security.md)."""
        return people.enrol_officer(_reach(), data)


@blp.route("/officers/<string:officer_id>")
class OneOfficer(MethodView):
    @require("admin", "supervisor", "officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, OFFICER)
    def get(self, officer_id: str) -> Officer:
        """One officer (admins of the county; its chief and supervisor: names only)."""
        principal = current_principal()
        if principal.role == "admin":
            return people.get_officer(_reach(), officer_id)
        return people.officer_seen_by(principal, officer_id)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(OfficerPatchSchema)
    @blp.response(200, OFFICER)
    def patch(self, data: dict[str, Any], officer_id: str) -> Officer:
        """Change an officer (a new duty role or station revokes their tokens; audited)."""
        return people.change_officer(_reach(), officer_id, data)


@blp.route("/officers/<string:officer_id>/deactivate")
class DeactivateOfficer(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, OFFICER)
    def post(self, officer_id: str) -> Officer:
        """Deactivate: every token revoked at once; dispatches and audit entries kept."""
        return _officer_action(officer_id, "deactivate")


@blp.route("/officers/<string:officer_id>/reactivate")
class ReactivateOfficer(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409)
    @blp.response(200, OFFICER)
    def post(self, officer_id: str) -> Officer:
        """Reactivate a deactivated officer (not an erased one: 409)."""
        return _officer_action(officer_id, "reactivate")


@blp.route("/officers/<string:officer_id>/erase")
class EraseOfficer(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, OFFICER)
    def post(self, officer_id: str) -> Officer:
        """Erase on request (PIPL): name, phone and credentials wiped; irreversible."""
        return _officer_action(officer_id, "erase")


# --- mandated units ---------------------------------------------------------------------


class UnitQuerySchema(StrictSchema):
    county = fields.String(validate=validate.Length(6, 6))
    cell = fields.String(validate=validate.Length(1, 15))
    type = fields.String(validate=validate.OneOf(UNIT_TYPES))
    active = fields.Boolean()


class UnitInSchema(StrictSchema):
    code = fields.String(required=True, metadata={
        "description": "e.g. the unified social credit code; unique; at most 40 characters"})
    name = fields.String(required=True)
    type = fields.String(required=True, metadata={"enum": list(UNIT_TYPES)})
    cell_code = fields.String(required=True, metadata={
        "description": "the grid cell it stands in (its county is the unit's)"})


class UnitPatchSchema(StrictSchema):
    name = fields.String()
    type = fields.String(metadata={"enum": list(UNIT_TYPES)})
    cell_code = fields.String()


class UnitOutSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True)
    county_code = fields.String(required=True)
    cell_code = fields.String(required=True)
    active = fields.Boolean()
    created_at = UtcDateTime(allow_none=True)
    updated_at = UtcDateTime(allow_none=True)


UNIT = UnitOutSchema()


@blp.route("/units")
class Units(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 422)
    @blp.arguments(UnitQuerySchema, location="query")
    @blp.response(200, UnitOutSchema(many=True))
    @blp.paginate(QuerySetPage)
    def get(self, query: dict[str, Any]) -> QuerySet:
        """Units of your county by type, cell and active; paged."""
        return units.list_units(_reach(), query)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 409, 415, 422)
    @blp.arguments(UnitInSchema)
    @blp.response(201, UNIT)
    def post(self, data: dict[str, Any]) -> Unit:
        """Enrol a unit (409 code_taken; 422 unknown_cell, unknown_type, too_long…)."""
        return units.enrol_unit(_reach(), data)


@blp.route("/units/<string:code>")
class OneUnit(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, UNIT)
    def get(self, code: str) -> Unit:
        """One unit of your county."""
        return units.get_unit(_reach(), code)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 415, 422)
    @blp.arguments(UnitPatchSchema)
    @blp.response(200, UNIT)
    def patch(self, data: dict[str, Any], code: str) -> Unit:
        """Change a unit's name, type or cell (audited)."""
        return units.change_unit(_reach(), code, data)


@blp.route("/units/<string:code>/deactivate")
class DeactivateUnit(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, UNIT)
    def post(self, code: str) -> Unit:
        """Deactivate a unit: it takes no new reporters; its reporters keep the link."""
        return units.set_active(_reach(), code, False)


@blp.route("/units/<string:code>/reactivate")
class ReactivateUnit(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, UNIT)
    def post(self, code: str) -> Unit:
        """Reactivate a unit."""
        return units.set_active(_reach(), code, True)


@blp.route("/reporters/<string:reporter_id>/welcome")
class WelcomeReporter(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409)
    @blp.response(202, WelcomeOutSchema)
    def post(self, reporter_id: str) -> dict[str, bool]:
        """Text an active reporter the welcome SMS in their language (once a minute at most)."""
        return {"queued": imports.send_welcome(_reach(), reporter_id)}


# --- roster files: import (a job) and export ---------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX}


@blp.route("/imports")
class Imports(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 413, 422)
    @blp.arguments(ImportFormSchema, location="form")
    @blp.arguments(ImportFileSchema, location="files")
    @blp.response(202, IMPORT)
    def post(self, form: dict[str, Any], files: dict[str, Any]) -> Import:
        """Import a roster file (ROSTER_FORMAT.md, at most 20 MB) as a job on the maintenance
        queue; follow it at `GET /api/v1/imports/<id>`."""
        return import_jobs.start(_reach(), files["file"].read(sheets.MAX_BYTES + 1),
                                 kind=form.get("kind"), county=form.get("county"),
                                 dry_run=form["dry_run"], all_or_nothing=form["all_or_nothing"],
                                 notify=form["notify"])


@blp.route("/imports/<string:import_id>")
class OneImport(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(ImportPageSchema, location="query")
    @blp.response(200, IMPORT)
    def get(self, query: dict[str, Any], import_id: str) -> dict[str, Any]:
        """An import's state and progress, its counts and one page of its per-row answers."""
        record = import_jobs.find(_reach(), import_id)
        return {**{name: getattr(record, name) for name in ImportOutSchema._declared_fields
                   if name != "rows"}, "rows": import_jobs.rows(record, query["page"])}


@blp.route("/imports/<string:import_id>/errors")
class ImportErrors(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, content_type=XLSX, description="each bad row as it was, and what to fix")
    def get(self, import_id: str) -> Response:
        """The error workbook of an import (kept 7 days): each bad row and what to fix."""
        data = import_jobs.errors_file(_reach(), import_id)
        return Response(data, mimetype=XLSX, headers={
            "Content-Disposition": f"attachment; filename=import-{import_id}-errors.xlsx"})


@blp.route("/roster/export")
class RosterExport(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 422)
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.response(200, description="the roster file (CSV or XLSX), ROSTER_FORMAT.md's columns")
    def get(self, query: dict[str, Any]) -> Response:
        """Your county's active units, reporters or officers as CSV or XLSX (audited);
        a cell that would be a spreadsheet formula is escaped."""
        kind, fmt = query["kind"], query["format"]
        data = exports.export(_reach(), kind, fmt, query.get("county"))
        return Response(data, mimetype=MEDIA[fmt], headers={
            "Content-Disposition": f"attachment; filename={kind}.{fmt}"})
