"""Reading roster files (gateway/enrolment/sheets.py): pure, no database."""

from __future__ import annotations

import io

import openpyxl
import pytest

from gateway.enrolment.sheets import Unusable, fold, read


def xlsx(rows: list[list[object]], title: str = "人员", merge: str | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_headers_match_in_either_language_full_width_and_any_case():
    assert fold("  ＧＲＩＤ＿ＣＯＤＥ　") == "grid_code"
    [sheet] = read("ＰＨＯＮＥ,　姓名　,Role,Ｇｒｉｄ Code\n13800138000,张三 ,网格员,1\n"
                   .encode("gb18030"), "reporters")
    assert sheet.rows[0].values == {"name": "张三", "phone": "13800138000",
                                    "role": "grid_worker", "unit": None, "grid_code": "1",
                                    "language": None}


def test_merged_cells_leave_the_rows_below_empty_and_so_required():
    data = xlsx([["姓名", "手机号", "角色"], ["张三", "13800138000", "教师"],
                 ["李四", "13800138001", None]], merge="C2:C3")
    [sheet] = read(data)
    assert sheet.rows[0].values["role"] == "teacher"
    assert sheet.rows[1].values["role"] is None  # the importer says `required`


def test_numbers_stored_as_numbers_read_as_their_digits():
    [sheet] = read(xlsx([["姓名", "手机号", "角色"], ["张三", 13800138000.0, "教师"]]))
    assert sheet.rows[0].values["phone"] == "13800138000"


def test_a_formula_is_not_taken_for_a_value():
    [sheet] = read(xlsx([["姓名", "手机号", "角色"], ["=B2", "13800138000", "教师"]]))
    assert [(e["field"], e["code"]) for e in sheet.rows[0].errors] == [("name", "required")]


@pytest.mark.parametrize(("data", "says"), [
    (b"", "empty"),
    ("姓名,手机号\n".encode(), "角色"),
    (b"\xff\xfe\x00n\x00a", "binary"),
    ("a,b\n".encode("utf-16"), "binary"),
    (xlsx([["姓名", "手机号", "角色"]], title="Sheet1"), "no sheet"),
])
def test_an_unusable_file_says_why(data, says):
    with pytest.raises(Unusable, match=says):
        read(data, "reporters" if not data.startswith(b"PK") else None)


def test_other_sheets_are_ignored_with_a_warning():
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.create_sheet("reporters").append(["name", "phone", "role"])
    out = io.BytesIO()
    book.save(out)
    [sheet] = read(out.getvalue())
    assert sheet.kind == "reporters"
    assert sheet.warnings == ["sheet 说明 ignored (not a roster sheet)"]


def test_a_workbook_that_unpacks_into_too_much_is_refused(monkeypatch):
    from gateway.enrolment import sheets
    data = xlsx([["姓名", "手机号", "角色"], ["张三" * 2000, "13800138000", "教师"]])
    monkeypatch.setattr(sheets, "MAX_UNPACKED", 10_000)
    with pytest.raises(Unusable, match="unpacks to more than"):
        read(data)
