"""`safegrid people import`: ROSTER_FORMAT.md's files, answers and exit statuses."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest

from gateway.privacy import audit
from gateway.records.people import Officer, Reporter
from gateway.records.units import Unit
from gateway.sample import cell_code
from sms.records import OutboundMessage

CELL = cell_code(0, 0, 0)
HEADER_ZH = "姓名,手机号,角色,单位,网格编码,语言"


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def rows_of(result) -> dict[int, dict]:
    return {r["row"]: r for r in lines(result) if "row" in r}


def codes(result, row: int) -> set[str]:
    return {e["code"] for e in rows_of(result)[row].get("errors", [])}


@pytest.fixture
def write(tmp_path):
    def write(name: str, content: str | bytes, encoding: str = "utf-8") -> str:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return str(path)
    return write


def workbook(sheets: dict[str, list[list[object]]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_(run, path: str, *args: str):
    return run("people", "import", path, "--county", "530627", "--format", "json", *args)


def test_a_gbk_csv_with_chinese_headers_and_labels_lands_and_says_so(run, county, write):
    path = write("roster.csv", f"{HEADER_ZH}\r\n"
                 f"王老师,１３９ １２３４-０００１,教师,530627-U03,,英文\r\n"
                 f"赵网格, +86 139 1234 0002 ,网格员,,{CELL},\r\n", encoding="gbk")
    first = import_(run, path, "--kind", "reporters")
    assert first.exit_code == 0, first.output
    assert [r["status"] for r in lines(first)[:-1]] == ["created", "created"]
    assert lines(first)[-1] == {"summary": {"created": 2, "updated": 0, "unchanged": 0,
                                            "error": 0}}
    teacher = Reporter.by_phone("+8613912340001").get()
    assert (teacher.name, teacher.role, teacher.unit, teacher.language, teacher.county_code) \
        == ("王老师", "teacher", "530627-U03", "en", "530627")
    worker = Reporter.by_phone("+8613912340002").get()
    assert (worker.role, worker.home_cell, worker.language) == ("grid_worker", CELL, "zh")
    again = import_(run, path, "--kind", "reporters")
    assert again.exit_code == 0
    assert [r["status"] for r in lines(again)[:-1]] == ["unchanged", "unchanged"]
    changed = write("changed.csv", f"{HEADER_ZH}\r\n"
                    "王老师,13912340001,教师,镇雄县第一小学,,中文\r\n", encoding="gbk")
    result = import_(run, changed, "--kind", "reporters")
    assert rows_of(result)[2]["status"] == "updated"
    assert Reporter.by_phone("+8613912340001").get().language == "zh"
    entries = audit.AuditEntry.objects(action="roster.import")
    assert [(e.details["created"], e.details["unchanged"], e.details["updated"])
            for e in entries] == [(2, 0, 0), (0, 2, 0), (0, 0, 1)]
    assert "13912340001" not in json.dumps([e.details for e in entries])


def test_utf8_with_bom_and_english_headers_in_any_order(run, county, write):
    path = write("roster.csv", "\ufeffLanguage, PHONE ,Name,Role,Ｇｒｉｄ＿Ｃｏｄｅ,Extra\n"
                 f"ii,13912340003,阿依,grid_worker,{CELL},x\n")
    result = import_(run, path, "--kind", "reporters")
    assert result.exit_code == 0, result.output
    assert Reporter.by_phone("+8613912340003").get().language == "ii"
    assert "column Extra ignored" in result.output


def test_every_row_error_has_its_code_and_good_rows_still_land(run, county, write):
    rows = [
        "张三,13912340010,teacher,,,",  # 2 fine
        ",13912340011,teacher,,,",  # 3 required name
        "李四,12345,teacher,,,",  # 4 invalid_phone
        "王五,0871-65123456,teacher,,,",  # 5 not_mobile
        "赵六,13912340010,teacher,,,",  # 6 duplicate_in_file
        "钱七,+8613800003001,teacher,,,",  # 7 an officer's phone: phone_taken
        "孙八,13912340012,grid_worker,,530627999999999,",  # 8 unknown_cell
        "周九,13912340013,teacher,NO-SUCH-UNIT,,",  # 9 unknown_unit
        "吴十,13912340014,pilot,,,",  # 10 unknown_role
        "郑一,13912340015,teacher,,,fr",  # 11 unknown_language
        "长" * 101 + ",13912340016,teacher,,,",  # 12 too_long
        "冯二,13912340017,teacher,,,zh" + ",x" * 34,  # 13 a row of 40 cells
        "陈三,2024-01-05,teacher,,,",  # 14 a date where the phone should be
    ]
    path = write("bad.csv", "name,phone,role,unit,grid_code,language\n" + "\n".join(rows))
    result = import_(run, path, "--kind", "reporters")
    assert result.exit_code == 1, result.output
    assert rows_of(result)[2]["status"] == "created"
    expected = {3: "required", 4: "invalid_phone", 5: "not_mobile", 6: "duplicate_in_file",
                7: "phone_taken", 8: "unknown_cell", 9: "unknown_unit", 10: "unknown_role",
                11: "unknown_language", 12: "too_long", 13: "too_long", 14: "invalid_phone"}
    for row, code in expected.items():
        assert code in codes(result, row), (row, rows_of(result)[row])
    assert Reporter.by_phone("+8613912340010").get().name == "张三"  # the first row won
    assert lines(result)[-1]["summary"] == {"created": 1, "updated": 0, "unchanged": 0,
                                            "error": 12}
    assert "13912340011" not in result.output.replace('"row"', "")  # no values echoed


def test_all_or_nothing_and_dry_run_write_nothing(run, county, write):
    path = write("r.csv", "name,phone,role\n甲,13912340020,teacher\n乙,123,teacher\n")
    result = import_(run, path, "--kind", "reporters", "--all-or-nothing")
    assert result.exit_code == 1
    assert Reporter.by_phone("+8613912340020").first() is None
    good = write("g.csv", "name,phone,role\n甲,13912340020,teacher\n")
    dry = import_(run, good, "--kind", "reporters", "--dry-run")
    assert dry.exit_code == 0
    assert rows_of(dry)[2]["status"] == "created"
    assert Reporter.by_phone("+8613912340020").first() is None
    assert import_(run, good, "--kind", "reporters", "--all-or-nothing").exit_code == 0
    assert Reporter.by_phone("+8613912340020").first() is not None


def test_an_xlsx_workbook_with_three_sheets_numbers_formulas_and_dates(run, county, write):
    import datetime as dt
    data = workbook({
        "单位": [["单位编码", "单位名称", "类型", "网格编码"],
                 ["91530627MA6K000009", "第三幼儿园", "幼儿园", CELL],
                 ["91530627MA6K000010", "无网格", "学校", "530627999999999"],
                 ["91530627MA6K000011", "怪单位", "马戏团", CELL]],
        "人员": [["姓名", "手机号", "角色", "单位", "网格编码"],
                 ["钱老师", 13912340030, "教师", "91530627MA6K000009", None],
                 [None, None, None, None, None],
                 ["孙医生", "=A2", "医生", None, None],
                 ["李护士", dt.datetime(2024, 1, 5), "护士", None, None]],
        "民警": [["姓名", "手机号", "职务", "派出所", "县区"],
                 ["新民警", "13912340031", "民警", "530627-NT", "530627"],
                 ["没所的", "13912340032", "值班民警", None, "530627"],
                 ["错所的", "13912340033", "民警", "530627-XX", "530627"],
                 ["报告人", "+8613800001001", "民警", "530627-NT", "530627"],
                 ["怪职务", "13912340034", "局长", "530627-NT", "530627"]],
        "备注": [["说明"]],
    })
    path = write("roster.xlsx", data)
    result = import_(run, path)
    assert result.exit_code == 1, result.output
    by = {(r["sheet"], r["row"]): r for r in lines(result) if "row" in r}
    assert by[("units", 2)]["status"] == "created"
    assert Unit.objects(code="91530627MA6K000009").get().type == "kindergarten"
    assert by[("reporters", 2)]["status"] == "created"
    assert Reporter.by_phone("+8613912340030").get().unit == "91530627MA6K000009"
    assert ("reporters", 3) not in by  # an empty row is skipped
    assert by[("reporters", 4)]["errors"][0]["code"] == "invalid_phone"  # a formula
    assert by[("reporters", 5)]["errors"][0]["code"] == "invalid_phone"  # a date
    assert by[("officers", 2)]["status"] == "created"
    assert Officer.by_phone("+8613912340031").get().station_code == "530627-NT"
    assert {e["code"] for e in by[("officers", 3)]["errors"]} == {"required"}
    assert {e["code"] for e in by[("officers", 4)]["errors"]} == {"unknown_station"}
    assert {e["code"] for e in by[("officers", 5)]["errors"]} == {"phone_taken"}
    assert {e["code"] for e in by[("officers", 6)]["errors"]} == {"unknown_role"}
    assert {e["code"] for e in by[("units", 3)]["errors"]} == {"unknown_cell"}
    assert by[("units", 4)]["status"] == "error"  # 马戏团 is no unit type
    assert "sheet 备注 ignored" in result.output
    again = import_(run, path)
    assert {r["status"] for r in lines(again)[:-1] if r["sheet"] != "reporters"
            or r["row"] == 2} <= {"unchanged", "error"}


@pytest.mark.parametrize(("content", "args", "says"), [
    (b"", ("--kind", "reporters"), "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", ("--kind", "reporters"), "not a CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", (), ".xls"),
    (b"PK\x03\x04 broken zip", (), "XLSX"),
    ("姓名,角色\n张三,teacher\n".encode(), ("--kind", "reporters"), "手机号"),
    (b"name,phone,role\n", (), "--kind"),
])
def test_an_unusable_file_is_one_sentence_and_exit_2(run, county, write, content, args, says):
    result = import_(run, write("f.bin", content), *args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert audit.AuditEntry.objects(action="roster.import").count() == 0


def test_too_big_and_too_many_rows_write_nothing(run, county, write, monkeypatch):
    from gateway.enrolment import sheets
    big = write("big.csv", b"name,phone,role\n" + b"x" * (sheets.MAX_BYTES + 10))
    result = import_(run, big, "--kind", "reporters")
    assert result.exit_code == 2
    assert "larger than 20 MB" in result.output
    monkeypatch.setattr(sheets, "MAX_ROWS", 3)
    many = write("many.csv", "name,phone,role\n" + "".join(
        f"人{i},1391234{i:04d},teacher\n" for i in range(100, 104)))
    result = import_(run, many, "--kind", "reporters")
    assert result.exit_code == 2
    assert "more than 3 rows" in result.output
    assert Reporter.by_phone("+8613912340100").first() is None


def test_notify_texts_each_new_reporter_the_welcome_in_their_language(run, county, write,
                                                                       monkeypatch):
    monkeypatch.setenv("SAFEGRID_SMS_ENABLED", "true")
    path = write("r.csv", "name,phone,role,unit,language\n"
                 "A,13912340040,teacher,530627-U03,en\n甲,13912340041,teacher,530627-U03,\n")
    result = import_(run, path, "--kind", "reporters", "--notify")
    assert result.exit_code == 0, result.output
    from gateway.delivery.outbound_sms import message_text
    texts = sorted(message_text(m) for m in OutboundMessage.objects(purpose="welcome"))
    assert len(texts) == 2
    assert any("镇雄县第一小学" in t and "您已登记" in t for t in texts)
    assert any("enrol" in t.lower() for t in texts)  # the English catalog
    again = import_(run, path, "--kind", "reporters", "--notify")
    assert again.exit_code == 0
    assert OutboundMessage.objects(purpose="welcome").count() == 2  # not twice


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_tipsters_number_becomes_the_reporter_and_another_countys_is_taken(
        run, county, write, dry_run):
    tipster = Reporter(phone="+8613912340050", role="public").save()
    Reporter(phone="+8613912340051", name="外县", role="teacher", county_code="530602").save()
    path = write("r.csv", "name,phone,role\n甲,13912340050,teacher\n乙,13912340051,teacher\n")
    result = import_(run, path, "--kind", "reporters", *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1, result.output
    assert rows_of(result)[2]["status"] == "created"
    assert codes(result, 3) == {"phone_taken"}
    became = Reporter.objects(id=tipster.id).get()
    assert (became.role, became.county_code) == (("public", None) if dry_run
                                                 else ("teacher", "530627"))
    assert Reporter.by_phone("+8613912340051").get().county_code == "530602"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_exported_roster_imports_again_unchanged(run, county, write, tmp_path, fmt):
    path = write("r.csv", "name,phone,role,language\n=1+1,13912340060,teacher,en\n")
    assert import_(run, path, "--kind", "reporters").exit_code == 0
    out = str(tmp_path / f"out.{fmt}")
    exported = run("people", "export", "--kind", "reporters", "--county", "530627",
                   "--format", fmt, "-o", out)
    assert exported.exit_code == 0, exported.output
    again = import_(run, out, "--kind", "reporters")
    assert again.exit_code == 0, again.output
    statuses = {r["status"] for r in lines(again)[:-1]}
    assert statuses == {"unchanged"}, lines(again)
