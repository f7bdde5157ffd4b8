"""Roster files as read: CSV or XLSX in, rows of typed values (or row errors) out.

Pure: no database. ROSTER_FORMAT.md is the contract: CSV in UTF-8 (with or
without BOM) or GB18030/GBK (what Chinese Excel writes), XLSX read with
openpyxl's read-only streaming (one sheet per kind, named in either language);
headers matched after trimming, case-folding and full-width → half-width;
unknown columns ignored with a warning; empty rows skipped; cells trimmed
(full-width spaces too); numbers stored as numbers read as their digits.

A file that cannot be used at all raises `Unusable` (one sentence, nothing is
written). Limits, and why: `MAX_BYTES` (20 MB) and `MAX_ROWS` (100,000 data rows
a sheet) bound a worker's memory and an import's time; the largest county
rosters (a county's grid workers and mandated reporters) are tens of thousands.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 100  # a header wider than this is not a roster
# A workbook is a zip: what it unpacks to is bounded too (openpyxl holds the shared
# strings in memory), so a small file cannot unpack into gigabytes (a zip bomb).
MAX_UNPACKED = 200 * 1024 * 1024

KINDS = ("units", "reporters", "officers")
SHEET_KINDS = {"units": "units", "单位": "units", "reporters": "reporters", "人员": "reporters",
               "officers": "officers", "民警": "officers"}


@dataclass(frozen=True)
class Column:
    key: str  # the name the importer uses
    names: tuple[str, str]  # English / 中文, as in ROSTER_FORMAT.md
    required: bool = False


COLUMNS: dict[str, tuple[Column, ...]] = {
    "units": (Column("code", ("code", "单位编码"), True),
              Column("name", ("name", "单位名称"), True),
              Column("type", ("type", "类型"), True),
              Column("grid_code", ("grid_code", "网格编码"), True)),
    "reporters": (Column("name", ("name", "姓名"), True),
                  Column("phone", ("phone", "手机号"), True),
                  Column("role", ("role", "角色"), True), Column("unit", ("unit", "单位")),
                  Column("grid_code", ("grid_code", "网格编码")),
                  Column("language", ("language", "语言"))),
    "officers": (Column("name", ("name", "姓名"), True), Column("phone", ("phone", "手机号"), True),
                 Column("role", ("role", "职务"), True), Column("station", ("station", "派出所")),
                 Column("county", ("county", "县区"), True)),
}

# Chinese labels of coded values (ROSTER_FORMAT.md); English codes pass through as they are.
LABELS: dict[str, dict[str, str]] = {
    "reporters.role": {"网格员": "grid_worker", "教师": "teacher", "医护": "medical",
                       "医生": "medical", "护士": "medical", "婚姻登记员": "registrar",
                       "交通运输": "transport", "宾馆": "hotel", "儿童主任": "child_director",
                       "其他": "other"},
    "officers.role": {"民警": "officer", "值班民警": "duty_officer", "所长": "chief",
                      "刑侦值班": "county_desk", "督导": "supervisor"},
    "units.type": {"学校": "school", "幼儿园": "kindergarten", "医院": "hospital",
                   "卫生院": "clinic", "诊所": "clinic", "村委会": "village_committee",
                   "居委会": "residents_committee", "婚姻登记处": "marriage_registry",
                   "交通站点": "transport", "宾馆": "hotel", "福利机构": "welfare",
                   "用工单位": "employer", "职业中介": "agency"},
    "reporters.language": {"中文": "zh", "英文": "en", "维吾尔文": "ug", "藏文": "bo",
                           "彝文": "ii"},
}

# What a spreadsheet takes for a formula; an export escapes such a cell with a leading
# apostrophe (gateway/enrolment/exports.py), and reading takes the apostrophe off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SEPARATORS = re.compile(r"[\s_\-]+")
_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


class Unusable(ValueError):
    """The file cannot be used at all (exit status 2; nothing written)."""


@dataclass(slots=True)
class Row:
    """One data row: `values` by column key (None when empty), or the errors already seen."""

    sheet: str
    number: int  # the spreadsheet's own row number; the header is row 1
    values: dict[str, str | None]
    errors: list[dict[str, str]] = field(default_factory=list)

    def error(self, name: str, code: str, message: str) -> None:
        self.errors.append({"field": name, "code": code, "message": message})


@dataclass
class Sheet:
    kind: str
    rows: list[Row]
    warnings: list[str] = field(default_factory=list)


def fold(text: str) -> str:
    """Full-width → half-width (NFKC), trimmed, case-folded: how headers and codes compare."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def header_key(text: str) -> str:
    return _SEPARATORS.sub("", fold(text)).replace("_", "")


def trim(text: str) -> str:
    """A cell's text without surrounding spaces (full-width ones too) or a stray BOM."""
    return text.strip().strip("\ufeff\u200b").strip()


def coded(kind: str, key: str, value: str | None) -> str | None:
    """A coded value (role, type, language) as its code: Chinese labels and case folded."""
    if value is None:
        return None
    folded = fold(value)
    labels = LABELS.get(f"{kind}.{key}", {})
    return labels.get(folded, labels.get(value, folded))


def read(data: bytes, kind: str | None = None) -> list[Sheet]:
    """The sheets of a roster file (CSV needs `kind`); raises Unusable."""
    if not data:
        raise Unusable("the file is empty")
    if len(data) > MAX_BYTES:
        raise Unusable(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it")
    if kind is not None and kind not in KINDS:
        raise Unusable(f"unknown kind {kind}: one of {', '.join(KINDS)}")
    if data.startswith(_XLS_MAGIC):
        raise Unusable("an Excel 97-2003 (.xls) file: save it as .xlsx or CSV (UTF-8) first")
    if data.startswith(_XLSX_MAGIC):
        return _read_xlsx(data, kind)
    if kind is None:
        raise Unusable("a CSV file holds one kind: say which with --kind "
                       "(units, reporters or officers)")
    return [_sheet(kind, enumerate(csv.reader(io.StringIO(_decode(data))), start=1))]


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise Unusable("not a CSV or XLSX file (binary content)")
    if data.startswith(b"\xef\xbb\xbf"):
        encodings: Iterable[str] = ("utf-8-sig",)
    else:
        encodings = ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Unusable("not text in UTF-8 or GB18030/GBK: save it as CSV (UTF-8) or XLSX")


def _read_xlsx(data: bytes, kind: str | None) -> list[Sheet]:
    import openpyxl  # only imported when a workbook comes (its import costs ~0.2 s)

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Unusable("not a readable XLSX workbook") from exc
    if unpacked > MAX_UNPACKED:
        raise Unusable(f"the workbook unpacks to more than {MAX_UNPACKED // (1024 * 1024)} MB: "
                       "split it")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise Unusable("not a readable XLSX workbook") from exc
    try:
        sheets: list[Sheet] = []
        ignored: list[str] = []
        names = book.sheetnames
        for name in names:
            sheet_kind = SHEET_KINDS.get(fold(name))
            if sheet_kind is None and kind is not None and len(names) == 1:
                sheet_kind = kind  # one sheet, named otherwise: the kind said
            if sheet_kind is None or (kind is not None and sheet_kind != kind):
                ignored.append(name)
                continue
            rows = ((i, [_xlsx_value(c) for c in r])
                    for i, r in enumerate(book[name].iter_rows(), start=1))
            sheets.append(_sheet(sheet_kind, rows))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise Unusable("not a readable XLSX workbook") from exc
    finally:
        book.close()
    if not sheets:
        raise Unusable("no sheet named units/单位, reporters/人员 or officers/民警"
                       + (f" for --kind {kind}" if kind else ""))
    sheets[0].warnings.extend(f"sheet {n} ignored (not a roster sheet)" for n in ignored)
    return sheets


class _Formula(str):
    """A formula where a value should be (the file keeps no value we can trust)."""


class _Date(str):
    """A date or time cell."""


def _xlsx_value(cell: Any) -> Any:
    value = getattr(cell, "value", None)
    if getattr(cell, "data_type", None) == "f" and value is not None:
        return _Formula(str(value))
    return value


def _text(value: Any) -> str | None:
    """A cell as trimmed text; numbers stored as numbers read as their digits."""
    if value is None:
        return None
    if isinstance(value, _Formula | _Date):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return _Date(value.isoformat())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = trim(str(value))
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        text = text[1:]  # escaped by an export: the value is what follows
    return text or None


def _sheet(kind: str, rows: Iterator[tuple[int, list[Any]]]) -> Sheet:
    sheet = Sheet(kind, [])
    header: dict[int, str] | None = None
    width = 0
    for number, raw in rows:
        if header is None:
            if all(_text(v) is None for v in raw):
                continue  # blank lines above the header
            header = _header(kind, raw, sheet)
            width = max(i for i, v in enumerate(raw) if _text(v) is not None) + 1
            continue
        cells = [_text(v) for v in raw]
        if all(c is None for c in cells):
            continue
        if len(sheet.rows) >= MAX_ROWS:
            raise Unusable(f"sheet {kind} has more than {MAX_ROWS:,} rows: split the file")
        sheet.rows.append(_row(kind, number, header, width, cells))
    if header is None:
        raise Unusable(f"sheet {kind} has no header row")
    return sheet


def _header(kind: str, raw: list[Any], sheet: Sheet) -> dict[int, str]:
    if len(raw) > MAX_COLUMNS and any(_text(v) for v in raw[MAX_COLUMNS:]):
        raise Unusable(f"sheet {kind}: the header has more than {MAX_COLUMNS} columns")
    wanted = {header_key(name): col.key for col in COLUMNS[kind] for name in col.names}
    found: dict[int, str] = {}
    for index, value in enumerate(raw):
        text = _text(value)
        if text is None:
            continue
        key = wanted.get(header_key(text))
        if key is None:
            sheet.warnings.append(f"sheet {kind}: column {text[:40]} ignored (unknown)")
        elif key in found.values():
            sheet.warnings.append(f"sheet {kind}: a second column {text[:40]} ignored")
        else:
            found[index] = key
    missing = [f"{c.names[0]}/{c.names[1]}" for c in COLUMNS[kind]
               if c.required and c.key not in found.values()]
    if missing:
        raise Unusable(f"sheet {kind}: the header lacks the required column "
                       + ", ".join(missing))
    return found


def _row(kind: str, number: int, header: dict[int, str], width: int,
         cells: list[str | None]) -> Row:
    row = Row(kind, number, {col.key: None for col in COLUMNS[kind]})
    if any(c is not None for c in cells[width:]):
        row.error("row", "too_long", f"{len(cells)} cells where the header names {width}: "
                  "a comma in an unquoted value, or a shifted row?")
    for index, key in header.items():
        value = cells[index] if index < len(cells) else None
        if isinstance(value, _Formula):
            row.error(key, "invalid_phone" if key == "phone" else "required",
                      "a formula, not a value: paste the column as values")
            value = None
        elif isinstance(value, _Date) and key == "phone":
            row.error(key, "invalid_phone", "a date, not a phone number: format the "
                      "column as text and type the number again")
            value = None
        elif value is not None and key in ("role", "type", "language"):
            value = coded(kind, key, value)
        elif value is not None and key == "phone":
            value = unicodedata.normalize("NFKC", value)  # full-width digits, ＋86
        row.values[key] = value
    return row
