"""A county's roster as a file (CSV or XLSX), and the error workbook of an import.

The columns are ROSTER_FORMAT.md's (English headers), so an exported file
imports again unchanged. Every cell that a spreadsheet would take for a
formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is
escaped with a leading apostrophe (OWASP's CSV-injection advice): a name typed
as `=HYPERLINK(…)` must not run on an admin's machine. Phones are E.164
(`+86…`) and would be escaped too, so they are written without the `+`
(`8613800138000`), which imports back as the same number; the importer takes
the apostrophe off a cell it escaped, so an exported file imports unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.enrolment.checks import Reach
from gateway.enrolment.sheets import COLUMNS, FORMULA_STARTS
from gateway.privacy import audit
from gateway.records.people import Officer, Reporter
from gateway.records.units import Unit

FORMATS = ("csv", "xlsx")


def safe_cell(value: Any) -> str | int | float:
    """`value` as text a spreadsheet will not run: a formula-like start is escaped. A number
    stays a number (a negative one is no formula: the figures' changes are signed)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def header(kind: str) -> list[str]:
    return [column.names[0] for column in COLUMNS[kind]]


def _phone(e164: str | None) -> str | None:
    return e164[1:] if e164 and e164.startswith("+") else e164


def rows(kind: str, county: str) -> Iterator[list[Any]]:
    """The county's active roster of `kind`, one list of values a person or unit."""
    if kind == "units":
        for unit in Unit.objects(county_code=county, active__ne=False).order_by("code"):
            yield [unit.code, unit.name, unit.type, unit.cell_code]
    elif kind == "reporters":
        for r in Reporter.objects(county_code=county, role__ne="public", active__ne=False,
                                  erased_at=None).order_by("id"):
            yield [r.name, _phone(r.phone), r.role, r.unit, r.home_cell, r.language or "zh"]
    else:
        for o in Officer.objects(county_code=county, active__ne=False,
                                 erased_at=None).order_by("id"):
            yield [o.name, _phone(o.phone), o.duty, o.station_code, o.county_code]


def to_csv(head: list[str], body: Iterable[list[Any]]) -> bytes:
    """UTF-8 with a BOM, so Chinese Excel opens it right; every cell escaped."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(head)
    writer.writerows([safe_cell(v) for v in row] for row in body)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(sheets: dict[str, tuple[list[str], Iterable[list[Any]]]]) -> bytes:
    """A workbook, one sheet a kind, written in openpyxl's streaming mode; cells escaped
    and stored as text (never as a formula)."""
    import openpyxl  # only when a workbook is written

    book = openpyxl.Workbook(write_only=True)
    for title, (head, body) in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(head)
        for row in body:
            sheet.append([safe_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(reach: Reach, kind: str, fmt: str, county: str | None) -> bytes:
    """A county's roster of `kind` as CSV or XLSX; audited (it holds names and phones)."""
    where = reach.county_for(county)
    audit.append(reach.actor, "roster.export", f"county:{where}", {"kind": kind, "format": fmt})
    if fmt == "csv":
        return to_csv(header(kind), rows(kind, where))
    return to_xlsx({kind: (header(kind), rows(kind, where))})
