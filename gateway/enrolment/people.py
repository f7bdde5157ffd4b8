"""Reporters and officers: enrol, change, deactivate, reactivate, erase (PIPL), list.

- **Deactivate** keeps the person, every report and every audit entry that names
  them; their tokens are revoked at once in every process
  (`gateway.access.tokens.revoke_tokens`), they cannot log in, and a
  deactivated reporter's SMS is filed as a public tip (gateway/intake/inbound_sms.py).
  Reactivating lets them log in again (new tokens are issued as usual).
- **Erase** (PIPL art. 47, on the person's request) wipes the sealed and
  identifying fields (name, phone, organisation, home cell, password, PIN,
  second factor) and frees the phone for a new enrolment; role, unit and county
  stay, so their reports still show the role and the duty figures still count.
  Irreversible; the person is deactivated too. Refused (409) while a legal hold
  covers one of the reporter's reports: the hold is a legal duty to preserve
  evidence, which includes who reported (lift the hold first).
- Each change is one single-document update guarded on the state it saw,
  audited with before/after digests (gateway/enrolment/checks.py).
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine.errors import NotUniqueError
from mongoengine.queryset import QuerySet

from gateway.access.tokens import Principal, revoke_tokens
from gateway.enrolment.checks import (
    Problems,
    Reach,
    audit_change,
    phone_holder,
    set_and_unset,
    taken,
    toggle,
    with_active,
)
from gateway.errors import Refusal
from gateway.privacy import audit, phonebook
from gateway.records.people import (
    DUTY_ROLES,
    ERASED_PREFIX,
    LANGUAGES,
    REPORTER_ROLES,
    Officer,
    Reporter,
)
from gateway.records.reports import Report
from gateway.records.units import Unit
from grid.documents import utcnow

ENROLLED_ROLES = tuple(r for r in REPORTER_ROLES if r != "public")
REPORTER_FIELDS = ("name", "phone", "role", "unit", "home_cell", "language", "organisation",
                   "county_code", "active")
OFFICER_FIELDS = ("name", "phone", "duty_role", "station_code", "county_code", "active")
STATION_ROLES = ("officer", "duty_officer", "chief", "county_desk")
ORGANISATION_MAX = 200
ENROLLED_MEANWHILE = "another account was enrolled with this phone meanwhile"

Person = Reporter | Officer


def view(person: Person) -> dict[str, Any]:
    """The clear values of a person's enrolment fields (for digests, never for logs)."""
    names = REPORTER_FIELDS if isinstance(person, Reporter) else OFFICER_FIELDS
    values = {name: getattr(person, name, None) for name in names}
    if isinstance(person, Officer):
        values["duty_role"] = person.duty
    return values


def kind_of(person: Person) -> str:
    return "reporter" if isinstance(person, Reporter) else "officer"


def _object_id(value: str) -> ObjectId | None:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


# --- reading ------------------------------------------------------------------------------


def get_reporter(reach: Reach, reporter_id: str) -> Reporter:
    """A registered reporter in the caller's reach (404 otherwise: ids are not an oracle)."""
    found = Reporter.objects(id=_object_id(reporter_id), role__ne="public").first() \
        if _object_id(reporter_id) else None
    if found is None or not reach.covers(found.county_code):
        raise Refusal(404, "no such reporter in your county")
    return found


def get_officer(reach: Reach, officer_id: str) -> Officer:
    found = Officer.objects(id=_object_id(officer_id)).first() if _object_id(officer_id) else None
    if found is None or not reach.covers(found.county_code):
        raise Refusal(404, "no such officer in your county")
    return found


def list_reporters(reach: Reach, filters: dict[str, Any]) -> QuerySet:
    """Registered reporters in reach, by county, cell, unit, role, active; audited (sealed)."""
    query = {**reach.base_query(filters), "role__ne": "public"}
    for given, stored in (("cell", "home_cell"), ("unit", "unit"), ("role", "role")):
        if filters.get(given):
            query[stored] = filters[given]
    _audit_read(reach, "reporter.list", filters)
    return Reporter.objects(**query).order_by("county_code", "id")


def list_officers(reach: Reach, filters: dict[str, Any]) -> QuerySet:
    return _officer_query(reach.base_query(filters), filters)


def _officer_query(query: dict[str, Any], filters: dict[str, Any]) -> QuerySet:
    if filters.get("station"):
        query["station_code"] = filters["station"]
    role = filters.get("role")
    if role in ("officer", "supervisor"):  # older documents have no duty role: their access role
        query["__raw__"] = {"$or": [{"duty_role": role}, {"duty_role": None, "role": role}]}
    elif role:
        query["duty_role"] = role
    with_active(query, filters.get("active"))
    return Officer.objects(**query).order_by("county_code", "station_code", "id")


def officers_seen_by(principal: Principal, filters: dict[str, Any]) -> QuerySet:
    """Officers a police caller may list: a chief their station's, a supervisor their county's.

    Names only: officer phones stay sealed from colleagues (the schema leaves them out).
    """
    if principal.role == "supervisor":
        if filters.get("county") and filters["county"] != principal.county_code:
            raise Refusal(403, "a supervisor lists the officers of their own county")
        return _officer_query({"county_code": principal.county_code}, filters)
    station = principal.station_code
    me = Officer.objects(id=_object_id(principal.subject_id or "")).only(
        "duty_role", "station_code", "active").first() if principal.subject_id else None
    if me is None or me.duty_role != "chief" or me.station_code != station or not me.active:
        raise Refusal(403, "only the station's chief (所长) or the county supervisor lists "
                           "its officers")
    if filters.get("station") and filters["station"] != station:
        raise Refusal(403, f"a chief lists the officers of station {station} only")
    return _officer_query({"station_code": station}, {**filters, "station": station})


def officer_seen_by(principal: Principal, officer_id: str) -> Officer:
    visible = officers_seen_by(principal, {})
    found = visible.filter(id=_object_id(officer_id)).first() if _object_id(officer_id) \
        else None
    if found is None:
        raise Refusal(404, "no such officer among those you may see")
    return found


def _audit_read(reach: Reach, action: str, filters: dict[str, Any]) -> None:
    audit.append(reach.actor, action, f"county:{reach.county or 'all'}",
                 {"filters": {k: v for k, v in filters.items() if v is not None}})


def read_reporter(reach: Reach, reporter_id: str) -> Reporter:
    """One reporter with name and phone: the read is audited (sealed data)."""
    found = get_reporter(reach, reporter_id)
    audit.append(reach.actor, "reporter.read", f"reporter:{found.id}", {})
    return found


# --- enrolling and changing ---------------------------------------------------------------


def _unit_code(problems: Problems, given: str | None, county: str) -> str | None:
    """A unit's code from its code or its exact name (unique in the county); else a problem."""
    if not given:
        return None
    by_code = Unit.objects(code=given, county_code=county, active__ne=False).only("code").first()
    if by_code is not None:
        return str(by_code.code)
    by_name = list(Unit.objects(name=given, county_code=county, active__ne=False)
                   .only("code").limit(2))
    if len(by_name) == 1:
        return str(by_name[0].code)
    problems.add("unit", "unknown_unit", f"no unit {given} in county {county}"
                 + (" (that name matches several: give the code)" if by_name else ""))
    return None


def _phone_free(problems: Problems, number: str | None, kind: str,
                current: ObjectId | None) -> None:
    if number is None:
        return
    holder = phone_holder(number)
    if holder is None or holder.id == current:
        return
    if kind_of(holder) != kind:
        problems.add("phone", "phone_taken", f"the phone belongs to an {kind_of(holder)}'s "
                     "account (reporter and officer accounts need distinct phones)")
    else:
        problems.add("phone", "phone_taken", f"another {kind} is enrolled with this phone")


def _name_and_phone(problems: Problems, data: dict[str, Any], kind: str,
                    current: Person | None) -> dict[str, Any]:
    """The name and phone given (all when enrolling), checked; the phone free for `kind`."""
    out: dict[str, Any] = {}
    if current is not None and data.get("county_code") not in (None, current.county_code):
        problems.add("county_code", "invalid", f"a {kind} moves to another county by being "
                     "deactivated here and enrolled there")
    if current is None or "name" in data:
        problems.text("name", data.get("name"), required=True)
        out["name"] = data.get("name", "").strip() if data.get("name") else None
    if current is None or "phone" in data:
        out["phone"] = problems.phone("phone", data.get("phone"))
        _phone_free(problems, out["phone"], kind, current.id if current else None)
    return out


def _reporter_changes(data: dict[str, Any], county: str,
                      current: Reporter | None) -> dict[str, Any]:
    """Checked, normalised values to store; every problem at once as a 422."""
    problems = Problems()
    creating = current is None
    out = _name_and_phone(problems, data, "reporter", current)
    if creating or "role" in data:
        problems.choice("role", data.get("role"), ENROLLED_ROLES, "unknown_role", required=True)
        out["role"] = data.get("role")
    if "language" in data or creating:
        out["language"] = data.get("language") or "zh"
        problems.choice("language", out["language"], LANGUAGES, "unknown_language")
    if "unit" in data:
        out["unit"] = _unit_code(problems, data["unit"], county)
    if "home_cell" in data:
        out["home_cell"] = data["home_cell"] or None
        problems.cell("home_cell", out["home_cell"], county)
    if "organisation" in data:
        problems.text("organisation", data["organisation"], required=False,
                      max_length=ORGANISATION_MAX)
        out["organisation"] = data["organisation"]
    role = out.get("role") or (current.role if current else None)
    cell = out.get("home_cell", current.home_cell if current else None)
    if role == "grid_worker" and not cell:
        problems.add("home_cell", "required", "a grid worker needs the home grid cell")
    problems.raise_any()
    return out


def enrol_reporter(reach: Reach, data: dict[str, Any]) -> Reporter:
    """Enrol a reporter (a phone that only sent public tips before becomes this reporter)."""
    county = reach.county_for(data.get("county_code"))
    values = _reporter_changes(data, county, None)
    now = utcnow()
    fields = {**values, "county_code": county, "active": True, "updated_at": now}
    index = phonebook.phone_index(values["phone"])
    tipster = Reporter.objects(phone_index=index, role="public").only("id").first()
    try:
        if tipster is not None:  # keeps the tips it sent; guarded on still being a tipster
            reporter = Reporter.objects(id=tipster.id, role="public").modify(
                new=True, **{f"set__{k}": v for k, v in fields.items()})
            if reporter is None:
                raise taken("phone", ENROLLED_MEANWHILE)
        else:
            reporter = Reporter(**fields, created_at=now).save(force_insert=True)
    except NotUniqueError as exc:  # a concurrent enrolment of the same phone
        raise taken("phone", ENROLLED_MEANWHILE) from exc
    audit_change(reach, "reporter.enrol", f"reporter:{reporter.id}", None, view(reporter))
    return reporter


def change_reporter(reach: Reach, reporter_id: str, data: dict[str, Any]) -> Reporter:
    current = get_reporter(reach, reporter_id)
    _refuse_if_erased(current)
    return _change(reach, current, _reporter_changes(data, str(current.county_code), current))


def _refuse_if_erased(person: Person) -> None:
    if person.erased_at is not None:
        raise Refusal(409, f"this {kind_of(person)} was erased: nothing is left to change")


def _change(reach: Reach, current: Person, values: dict[str, Any]) -> Any:
    """Store checked `values` in one update guarded on not being erased meanwhile; audited."""
    if not values:
        return current
    update = set_and_unset(values)
    if values.get("phone"):
        update["set__phone_index"] = phonebook.phone_index(values["phone"])
    try:
        changed = type(current).objects(id=current.id, erased_at=None).modify(
            new=True, set__updated_at=utcnow(), **update)
    except NotUniqueError as exc:
        raise taken("phone", ENROLLED_MEANWHILE) from exc
    kind = kind_of(current)
    if changed is None:
        raise Refusal(409, f"this {kind} was erased meanwhile")
    audit_change(reach, f"{kind}.change", f"{kind}:{current.id}", view(current), view(changed))
    return changed


def _officer_changes(data: dict[str, Any], county: str,
                     current: Officer | None) -> dict[str, Any]:
    problems = Problems()
    creating = current is None
    out = _name_and_phone(problems, data, "officer", current)
    if creating or "duty_role" in data:
        problems.choice("duty_role", data.get("duty_role"), tuple(DUTY_ROLES), "unknown_role",
                        required=True)
        out["duty_role"] = data.get("duty_role")
    if "station_code" in data:
        out["station_code"] = data["station_code"] or None
        problems.station("station_code", out["station_code"], county)
    duty = out.get("duty_role") or (current.duty if current else None)
    station = out.get("station_code", current.station_code if current else None)
    if duty in STATION_ROLES and not station:
        problems.add("station_code", "required", f"a {duty} belongs to a station")
    if duty == "supervisor" and station:
        out["station_code"] = None  # county-scoped: a supervisor has no station
    problems.raise_any()
    if out.get("duty_role"):
        out["role"] = DUTY_ROLES[out["duty_role"]]
    return out


def enrol_officer(reach: Reach, data: dict[str, Any]) -> Officer:
    county = reach.county_for(data.get("county_code"))
    values = _officer_changes(data, county, None)
    now = utcnow()
    try:
        officer = Officer(**{k: v for k, v in values.items() if v is not None},
                          county_code=county, active=True, updated_at=now).save(
            force_insert=True)
    except NotUniqueError as exc:
        raise taken("phone", ENROLLED_MEANWHILE) from exc
    audit_change(reach, "officer.enrol", f"officer:{officer.id}", None, view(officer))
    return officer


def change_officer(reach: Reach, officer_id: str, data: dict[str, Any]) -> Officer:
    current = get_officer(reach, officer_id)
    _refuse_if_erased(current)
    values = _officer_changes(data, str(current.county_code), current)
    changed: Officer = _change(reach, current, values)
    if "duty_role" in values or "station_code" in values:
        # Tokens carry the station and role they were issued for: new ones are needed.
        revoke_tokens(current.id)
    return changed


# --- deactivating, reactivating, erasing ---------------------------------------------------


def set_active(reach: Reach, person: Person, active: bool) -> Person:
    """Deactivate (tokens revoked at once, reports kept) or reactivate; idempotent, audited."""
    kind = kind_of(person)
    if person.erased_at is not None and active:
        raise Refusal(409, f"this {kind} was erased and cannot be reactivated: enrol again")
    # Revoked also when already inactive: nothing may linger.
    details = {} if active else {"tokens_revoked": revoke_tokens(person.id)}
    changed: Person = toggle(reach, person, active, f"{kind}:{person.id}", view, **details)
    return changed


def erase(reach: Reach, person: Person) -> Person:
    """Wipe a person's identifying fields on request (PIPL); irreversible, audited."""
    cls = type(person)
    kind = kind_of(person)
    if person.erased_at is not None:
        return person
    if isinstance(person, Reporter):
        held = Report.objects(reporter_id=person.id, legal_hold=True).only("code").first()
        if held is not None:
            raise Refusal(409, f"report {held.code} of this reporter is under legal hold: "
                               "its reporter must be kept until the hold is lifted",
                          {"legal_hold": [held.code]})
        wiped = ("phone", "name", "organisation", "home_cell", "password_hash",
                 "sms_pin_hash")
    else:
        wiped = ("phone", "phone_index", "name", "password_hash", "totp_secret",
                 "totp_last_step")
    now = utcnow()
    update: dict[str, Any] = {f"unset__{name}": True for name in wiped}
    if isinstance(person, Reporter):
        # The unique index stays as it is; a tombstone frees the number for a new enrolment.
        update["set__phone_index"] = f"{ERASED_PREFIX}{person.id}"
    changed = cls.objects(id=person.id, erased_at=None).modify(
        new=True, set__erased_at=now, set__active=False, set__updated_at=now, **update)
    revoked = revoke_tokens(person.id)
    if changed is None:
        return cls.objects(id=person.id).get()
    audit_change(reach, f"{kind}.erase", f"{kind}:{person.id}", view(person), view(changed),
                 tokens_revoked=revoked, wiped=list(wiped))
    return changed


def find_by_phone(reach: Reach, number: str) -> Person:
    """The officer or registered reporter with this (E.164) phone, in reach (operators)."""
    person = Officer.by_phone(number).first() or Reporter.by_phone(number).first()
    if person is None or not reach.covers(person.county_code):
        raise Refusal(404, "no officer or reporter has that phone")
    return person
