"""`safegrid people …` and `safegrid units …`: the platform operators' enrolment commands.

The same functions as the admin API (gateway/enrolment/), acting as an operator
who reaches every county, audited as `cli:<user>`. A refused change is one
sentence on stderr and exit status 2; nothing is half done.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from gateway.cli.common import configure, who_ran
from gateway.enrolment import exports, imports, sheets
from gateway.enrolment import people as enrol
from gateway.enrolment import units as unit_rules
from gateway.enrolment.checks import Reach
from gateway.errors import Refusal
from gateway.privacy import audit
from gateway.records.people import DUTY_ROLES, LANGUAGES, Officer, Reporter
from gateway.records.units import UNIT_TYPES
from gateway.runtime import settings
from sms.phones import InvalidPhone, mask, normalise

REFUSED = 2
SOME_ROWS_FAILED = 1


@contextmanager
def refusals() -> Iterator[None]:
    """A refusal from the rules as one sentence and exit status 2."""
    try:
        yield
    except Refusal as exc:
        codes = [f"{p['field']}: {p['message']} ({p['code']})"
                 for p in (exc.errors or {}).get("fields", [])]
        click.echo("safegrid: " + ("; ".join(codes) if codes else exc.message), err=True)
        sys.exit(REFUSED)


def _operator() -> Reach:
    return Reach.operator(who_ran())


def _person(reach: Reach, phone: str | None, person_id: str | None) -> Reporter | Officer:
    if person_id:
        try:
            return enrol.get_officer(reach, person_id)
        except Refusal:
            return enrol.get_reporter(reach, person_id)
    if not phone:
        raise Refusal(422, "say who: --phone or --id")
    try:
        number = normalise(phone)
    except InvalidPhone as exc:
        raise Refusal(422, f"not a valid phone number ({exc.reason})") from exc
    return enrol.find_by_phone(reach, number)


def _line(person: Reporter | Officer) -> str:
    kind = enrol.kind_of(person)
    where = (person.unit if isinstance(person, Reporter) else person.station_code) or "-"
    role = person.role if isinstance(person, Reporter) else person.duty
    state = "erased" if person.erased_at else ("active" if person.active else "inactive")
    return (f"{person.id}  {kind:8}  {role:14}  {person.county_code or '-':6}  {where:14}  "
            f"{state:8}  {mask(person.phone) if person.phone else '-'}")


def _who(option: Callable[..., Any]) -> Callable[..., Any]:
    option = click.option("--id", "person_id", help="The person's id.")(option)
    return click.option("--phone", help="The person's phone.")(option)


@click.group("people")
def people_group() -> None:
    """Reporters and officers: list, show, add, deactivate, reactivate, erase."""


@people_group.command("list")
@click.option("--kind", type=click.Choice(["reporters", "officers"]), default="reporters")
@click.option("--county", help="6-digit county adcode.")
@click.option("--role", help="A reporter role or an officer's duty role.")
@click.option("--unit", help="Reporters of this unit (code).")
@click.option("--station", help="Officers of this station (code).")
@click.option("--active/--inactive", default=None, help="Only active or only inactive people.")
def people_list(kind: str, county: str | None, role: str | None, unit: str | None,
                station: str | None, active: bool | None) -> None:
    """One line a person: id, kind, role, county, unit or station, state, masked phone."""
    configure()
    reach = _operator()
    with refusals():
        if kind == "reporters":
            found = enrol.list_reporters(reach, {"county": county, "role": role, "unit": unit,
                                                 "active": active})
        else:
            found = enrol.list_officers(reach, {"county": county, "role": role,
                                                "station": station, "active": active})
        for person in found:
            click.echo(_line(person))


@people_group.command("show")
@_who
def people_show(phone: str | None, person_id: str | None) -> None:
    """A person's fields, name and phone included (the read is audited)."""
    configure()
    reach = _operator()
    with refusals():
        person = _person(reach, phone, person_id)
        kind = enrol.kind_of(person)
        audit.append(reach.actor, f"{kind}.read", f"{kind}:{person.id}", {})
        click.echo(_line(person))
        for name, value in enrol.view(person).items():
            click.echo(f"  {name}: {'' if value is None else value}")


@people_group.command("add")
@click.option("--kind", type=click.Choice(["reporter", "officer"]), required=True)
@click.option("--name", required=True)
@click.option("--phone", required=True, help="A mobile number.")
@click.option("--role", required=True,
              help=f"reporter: {', '.join(enrol.ENROLLED_ROLES)}; officer: "
                   f"{', '.join(DUTY_ROLES)}")
@click.option("--county", help="6-digit county adcode.")
@click.option("--unit", help="Reporter: a unit's code (or its exact name in the county).")
@click.option("--cell", help="Reporter: the home grid cell (grid workers must have one).")
@click.option("--language", help=f"Reporter: {', '.join(LANGUAGES)} (zh by default).")
@click.option("--station", help="Officer: the station (all but supervisors).")
def people_add(kind: str, name: str, phone: str, role: str, county: str | None,
               unit: str | None, cell: str | None, language: str | None,
               station: str | None) -> None:
    """Enrol a reporter or an officer (audited); prints the new id."""
    configure()
    reach = _operator()
    with refusals():
        if kind == "reporter":
            data: dict[str, Any] = {"name": name, "phone": phone, "role": role,
                                    "county_code": county}
            data.update({k: v for k, v in (("unit", unit), ("home_cell", cell),
                                           ("language", language)) if v is not None})
            person: Reporter | Officer = enrol.enrol_reporter(reach, data)
        else:
            person = enrol.enrol_officer(reach, {"name": name, "phone": phone,
                                                 "duty_role": role, "county_code": county,
                                                 "station_code": station})
    click.echo(f"enrolled {kind} {person.id}")


@people_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=False))
@click.option("--kind", type=click.Choice(sheets.KINDS),
              help="units, reporters or officers (CSV needs it; XLSX names its sheets).")
@click.option("--county", help="6-digit county adcode the units and reporters belong to.")
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
@click.option("--all-or-nothing", is_flag=True, help="Write nothing if one row has an error.")
@click.option("--notify", is_flag=True, help="Text each new reporter the welcome SMS.")
def people_import(file: str, kind: str | None, county: str | None, dry_run: bool, output: str,
                  all_or_nothing: bool, notify: bool) -> None:
    """Import a roster (ROSTER_FORMAT.md): exit 0 all rows fine, 1 some rows had errors,
    2 the file could not be used (nothing written)."""
    try:
        with open(file, "rb") as handle:  # noqa: PTH123 (read at most the limit and a byte)
            data = handle.read(sheets.MAX_BYTES + 1)
    except OSError as exc:
        click.echo(f"safegrid: cannot read {file}: {exc.strerror}", err=True)
        sys.exit(REFUSED)
    configure()
    with refusals():
        try:
            outcome = imports.import_roster(
                _operator(), data, kind=kind, county=county, dry_run=dry_run,
                all_or_nothing=all_or_nothing, notify=notify)
        except sheets.Unusable as exc:
            click.echo(f"safegrid: {exc}", err=True)
            sys.exit(REFUSED)
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    if notify and not settings().sms_enabled:
        click.echo("warning: SMS is not enabled here (SAFEGRID_SMS_ENABLED): no welcome sent",
                   err=True)
    for result in outcome.results:
        if output == "json":
            click.echo(json.dumps(result, ensure_ascii=False))
        elif result["status"] == "error":
            click.echo(f"{result['sheet']} row {result['row']}: " + "; ".join(
                f"{e['field']}: {e['message']} ({e['code']})" for e in result["errors"]))
    summary = outcome.summary
    if output == "json":
        click.echo(json.dumps({"summary": summary}))
    else:
        written = "written" if outcome.written else "nothing written"
        click.echo(", ".join(f"{n} {k}" for k, n in summary.items()) + f" ({written})")
    if outcome.failed:
        sys.exit(SOME_ROWS_FAILED)


@people_group.command("export")
@click.option("--kind", type=click.Choice(sheets.KINDS), required=True)
@click.option("--county", required=True, help="6-digit county adcode.")
@click.option("--format", "fmt", type=click.Choice(exports.FORMATS), default="xlsx")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), required=True,
              help="The file to write (it holds names and phones: keep it safe).")
def people_export(kind: str, county: str, fmt: str, output: str) -> None:
    """A county's active roster as CSV or XLSX, in the import's columns (audited)."""
    configure()
    with refusals():
        data = exports.export(_operator(), kind, fmt, county)
    with open(output, "wb") as handle:  # noqa: PTH123 (one write)
        handle.write(data)
    click.echo(f"wrote {kind} of county {county} to {output}")


def _act(action: str, phone: str | None, person_id: str | None) -> None:
    configure()
    reach = _operator()
    with refusals():
        person = _person(reach, phone, person_id)
        if action == "erase":
            done = enrol.erase(reach, person)
        else:
            done = enrol.set_active(reach, person, action == "reactivate")
    click.echo(f"{action}d {enrol.kind_of(done)} {done.id}")


@people_group.command("deactivate")
@_who
def people_deactivate(phone: str | None, person_id: str | None) -> None:
    """Deactivate: tokens revoked at once everywhere; reports and audit entries kept."""
    _act("deactivate", phone, person_id)


@people_group.command("reactivate")
@_who
def people_reactivate(phone: str | None, person_id: str | None) -> None:
    """Reactivate a deactivated (not erased) person; they need new tokens."""
    _act("reactivate", phone, person_id)


@people_group.command("erase")
@_who
@click.confirmation_option(prompt="Erase this person's name and phone for good?")
def people_erase(phone: str | None, person_id: str | None) -> None:
    """Erase on request (PIPL): name, phone and credentials wiped; irreversible."""
    _act("erase", phone, person_id)


@click.group("units")
def units_group() -> None:
    """Mandated units (强制报告责任单位): list, add, deactivate."""


@units_group.command("list")
@click.option("--county", help="6-digit county adcode.")
@click.option("--type", "kind", type=click.Choice(UNIT_TYPES))
@click.option("--active/--inactive", default=None)
def units_list(county: str | None, kind: str | None, active: bool | None) -> None:
    """One line a unit: code, type, county, cell, state, name."""
    configure()
    with refusals():
        for unit in unit_rules.list_units(_operator(), {"county": county, "type": kind,
                                                        "active": active}):
            click.echo(f"{unit.code}  {unit.type:19}  {unit.county_code}  {unit.cell_code}  "
                       f"{'active' if unit.active else 'inactive':8}  {unit.name}")


@units_group.command("add")
@click.option("--code", required=True, help="The unit's code (e.g. its credit code).")
@click.option("--name", required=True)
@click.option("--type", "kind", required=True, help=", ".join(UNIT_TYPES))
@click.option("--cell", required=True, help="The grid cell it stands in.")
def units_add(code: str, name: str, kind: str, cell: str) -> None:
    """Enrol a unit (audited)."""
    configure()
    with refusals():
        unit = unit_rules.enrol_unit(_operator(), {"code": code, "name": name, "type": kind,
                                                   "cell_code": cell})
    click.echo(f"enrolled unit {unit.code}")


@units_group.command("deactivate")
@click.argument("code")
def units_deactivate(code: str) -> None:
    """Deactivate a unit: no new reporters join it (audited)."""
    configure()
    with refusals():
        unit = unit_rules.set_active(_operator(), code, False)
    click.echo(f"deactivated unit {unit.code}")
