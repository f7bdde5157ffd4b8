"""The SMS grammar of SMS_GRAMMAR.md, row by row, plus properties over any text."""

from __future__ import annotations

import dataclasses
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sms import grammar
from sms.grammar import (
    CATEGORIES,
    KINDS,
    MAX_DETAILS,
    REPORT_CODE_ALPHABET,
    UNCLASSIFIED,
    ParsedMessage,
    is_report_code,
    parse,
)

KNOWN_ERRORS = {"unknown_category", "missing_code", "bad_grid_code", "details_truncated"}
SEPARATORS = [" ", "  ", "\t", "\n", "\r\n", ",", "，", "、", ";", "；", ":", "：", "#", "＃", "*"]


def msg(kind: str, **fields: object) -> ParsedMessage:
    return ParsedMessage(kind=kind, **fields)  # type: ignore[arg-type]


# --- every example in the contract -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "R 1 @110105003012 穿红衣男孩被陌生人抱上面包车",
            msg(
                "report",
                category="CHILD",
                grid_code="110105003012",
                details="穿红衣男孩被陌生人抱上面包车",
            ),
        ),
        (
            "1 1 110105003012 boy taken into van",
            msg("report", category="CHILD", grid_code="110105003012", details="boy taken into van"),
        ),
        (
            "举报 拐卖妇女 村东头新来的外地媳妇不让出门",
            msg("report", category="WOMAN", details="村东头新来的外地媳妇不让出门"),
        ),
        (
            "S 402913 @110105003007 在车站看到",
            msg("sighting", alert_code="402913", grid_code="110105003007", details="在车站看到"),
        ),
        ("OK 402913", msg("swept", alert_code="402913")),
        ("Q R7K3Q9M", msg("status", report_code="R7K3Q9M")),
        ("帮助", msg("help")),
        ("TD", msg("unsubscribe")),
        (
            "村里来了个陌生人带着哭闹的小孩",
            msg("free_text", details="村里来了个陌生人带着哭闹的小孩"),
        ),
        ("", msg("help")),
    ],
)
def test_contract_examples(text: str, expected: ParsedMessage) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "token", ["@110105003012", "G110105-003-012", "网格110105003012", "g110105003012"]
)
def test_location_forms(token: str) -> None:
    got = parse(f"R 2 {token} 说是表妹")
    assert got == msg("report", category="WOMAN", grid_code="110105003012", details="说是表妹")


# --- first tokens ------------------------------------------------------------------

FIRST_TOKENS = {
    "report": ["R", "BG", "报告", "举报", "1"],
    "sighting": ["S", "发现", "线索", "2"],
    "swept": ["OK", "已排查", "排查", "3"],
    "status": ["Q", "查询", "4"],
    "help": ["H", "HELP", "?", "？", "帮助", "0"],
    "unsubscribe": ["TD", "退订", "STOP"],
}


@pytest.mark.parametrize(
    ("kind", "token"), [(kind, token) for kind, tokens in FIRST_TOKENS.items() for token in tokens]
)
def test_every_first_token(kind: str, token: str) -> None:
    assert parse(token).kind == kind
    assert parse(f"  {token}  ").kind == kind
    if token.isascii():
        assert parse(token.lower()).kind == kind
        assert parse(token.title()).kind == kind


def test_kinds_constant_lists_the_seven_kinds_in_contract_order() -> None:
    assert KINDS == ("report", "sighting", "swept", "status", "help", "unsubscribe", "free_text")
    assert set(FIRST_TOKENS) | {"free_text"} == set(KINDS)


@pytest.mark.parametrize(
    "text", ["Rabc", "OKAY", "帮助我", "R1", "11 110105003012", "HELPME", "??", "TD退订", "Ｏ"]
)
def test_keyword_must_be_a_whole_token(text: str) -> None:
    assert parse(text).kind == "free_text"


@pytest.mark.parametrize("text", ["   ", "\n\t", ",,;;", " #*、 ", "\u3000", "＃＃", "\u200b"])
def test_blank_or_separator_only_message_is_help(text: str) -> None:
    assert parse(text) == msg("help")


def test_help_and_unsubscribe_keep_trailing_text() -> None:
    assert parse("HELP 怎么发").details == "怎么发"
    assert parse("退订 不想收了").details == "不想收了"
    assert parse("退订 不想收了").kind == "unsubscribe"


# --- categories --------------------------------------------------------------------

CATEGORY_TABLE = {
    "CHILD": (1, ["拐卖儿童", "拐儿童", "儿童", "偷抢儿童"]),
    "WOMAN": (2, ["拐卖妇女", "妇女", "买卖婚姻"]),
    "ORIGIN": (3, ["来历不明", "来历不明儿童"]),
    "LABOUR": (4, ["强迫劳动", "强迫乞讨", "乞讨", "童工"]),
    "ADOPT": (5, ["非法收养", "非法送养", "买卖婴儿"]),
    "BIRTH": (6, ["可疑分娩", "冒名分娩", "代孕"]),
    "ABUSE": (7, ["性侵", "性侵未成年人"]),
    "ONLINE": (8, ["网络", "网络诱骗", "招聘诱骗"]),
    "OTHER": (9, ["其他"]),
}


def test_categories_constant_is_in_digit_order() -> None:
    assert sorted(CATEGORY_TABLE, key=lambda code: CATEGORY_TABLE[code][0]) == list(CATEGORIES)
    assert len(CATEGORIES) == 9
    assert UNCLASSIFIED == "UNCLASSIFIED"
    assert UNCLASSIFIED not in CATEGORIES


@pytest.mark.parametrize(
    ("code", "token"),
    [
        (code, token)
        for code, (digit, words) in CATEGORY_TABLE.items()
        for token in [str(digit), code, code.lower(), code.title(), *words]
    ],
)
def test_every_category_token(code: str, token: str) -> None:
    for first in ("R", "BG", "报告", "举报", "1"):
        got = parse(f"{first} {token} 村口小卖部")
        assert got == msg("report", category=code, details="村口小卖部")


@pytest.mark.parametrize(
    ("code", "word"),
    [(code, word) for code, (_, words) in CATEGORY_TABLE.items() for word in words],
)
def test_free_text_suggests_category_from_every_keyword(code: str, word: str) -> None:
    text = f"村里有人说{word}的事情"
    assert parse(text) == msg("free_text", category=code, details=text)


def test_full_width_category_digit_and_code_word() -> None:
    assert parse("Ｒ　７").category == "ABUSE"
    assert parse("ｒ　ｃｈｉｌｄ").category == "CHILD"


@pytest.mark.parametrize(
    ("text", "details"),
    [
        ("R", ""),
        ("举报", ""),
        ("1", ""),
        ("R 0 有情况", "0 有情况"),
        ("R 10 有情况", "10 有情况"),
        ("R KID 有情况", "KID 有情况"),
        ("举报 村里有人拐卖儿童", "村里有人拐卖儿童"),
        ("举报 拐卖儿童村口", "拐卖儿童村口"),
        ("R @110105003012 男孩被抱走", "@110105003012 男孩被抱走"),
    ],
)
def test_missing_or_unknown_category_keeps_the_whole_rest(text: str, details: str) -> None:
    got = parse(text)
    assert got.kind == "report"
    assert got.category == UNCLASSIFIED
    assert got.errors == ("unknown_category",)
    assert got.details == details


def test_unknown_category_still_finds_a_grid_token_without_removing_it() -> None:
    got = parse("R @110105003012 男孩被抱走")
    assert got.grid_code == "110105003012"
    assert got.details == "@110105003012 男孩被抱走"


def test_dotless_i_does_not_fold_into_a_code_word() -> None:
    assert parse("R chıld x").category == UNCLASSIFIED


# --- free text suggestions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("村里来了个来历不明儿童", "ORIGIN"),
        ("有人性侵未成年人", "ABUSE"),
        ("其他人看到有人偷抢儿童", "CHILD"),
        ("其他情况", "OTHER"),
        ("在网上被招聘诱骗，后来被强迫劳动", "ONLINE"),
        ("a stranger with a crying child", None),
        ("CHILD taken", None),
    ],
)
def test_free_text_suggestion_rules(text: str, category: str | None) -> None:
    got = parse(text)
    assert got.kind == "free_text"
    assert got.category == category
    assert got.details == unicodedata.normalize("NFKC", text)  # the full-width comma too
    assert got.errors == ()


def test_free_text_keeps_everything_and_picks_up_a_grid_token() -> None:
    text = "网格110105-003-012 村里来了个陌生人、  带着哭闹的小孩"
    got = parse(text)
    assert got == msg("free_text", grid_code="110105003012", details=text)


def test_free_text_ignores_malformed_grid_tokens() -> None:
    got = parse("看见 @1234 和 G45 高速")
    assert got == msg("free_text", details="看见 @1234 和 G45 高速")


# --- separators, spacing and full-width --------------------------------------------


@pytest.mark.parametrize("sep", SEPARATORS)
def test_every_separator(sep: str) -> None:
    assert parse(f"OK{sep}402913") == msg("swept", alert_code="402913")
    got = parse(f"R{sep}1{sep}@110105003012{sep}男孩")
    assert got == msg("report", category="CHILD", grid_code="110105003012", details="男孩")


def test_runs_of_mixed_separators_count_as_one() -> None:
    got = parse("#R ,, ;\t# 1 ::＠110105003012 ** \n 男孩，被抱走")
    assert got == msg("report", category="CHILD", grid_code="110105003012", details="男孩,被抱走")


def test_details_keep_inner_spacing_and_separators() -> None:
    got = parse("R 1 @110105003012 a  b\t c, d;  e  ")
    assert got.details == "a  b\t c, d;  e"


def test_full_width_message() -> None:
    got = parse("Ｒ　１　＠１１０１０５－００３－０１２，，穿红衣男孩ＡＢＣ")
    assert got == msg("report", category="CHILD", grid_code="110105003012", details="穿红衣男孩ABC")
    assert parse("ＯＫ　４０２９１３") == msg("swept", alert_code="402913")
    assert parse("Ｑ：ｒ７ｋ３ｑ９ｍ") == msg("status", report_code="R7K3Q9M")
    assert parse("ＳＴＯＰ") == msg("unsubscribe")
    assert parse("？") == msg("help")


def test_details_are_nfkc_normalised() -> None:
    got = parse("R 1 ｶﾀｶﾅ ①号楼 ﬁ")
    assert got.details == unicodedata.normalize("NFKC", "ｶﾀｶﾅ ①号楼 ﬁ")
    assert got.details == "カタカナ 1号楼 fi"


# --- locations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "grid"),
    [
        ("@110105003", "110105003"),
        ("@110105003012345", "110105003012345"),
        ("@110-105-003", "110105003"),
        ("G110105‐003‐012", "110105003012"),
        ("网格-110105003012-", "110105003012"),
        ("＠１１０１０５００３０１２", "110105003012"),
    ],
)
def test_grid_code_lengths_and_hyphens(token: str, grid: str) -> None:
    got = parse(f"S 402913 {token} 看到了")
    assert got == msg("sighting", alert_code="402913", grid_code=grid, details="看到了")


@pytest.mark.parametrize(
    "token",
    [
        "@11010500",  # 8 digits
        "@1101050030123456",  # 16 digits
        "@",
        "@abc",
        "@11010500301X",
        "@110105003012。",
        "G1234",
        "G7高速",
        "网格12",
        "@١١٠١٠٥٠٠٣٠١٢",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_malformed_grid_token_is_flagged_and_kept(token: str) -> None:
    got = parse(f"R 1 {token} 有情况")
    assert got == msg(
        "report", category="CHILD", details=f"{token} 有情况", errors=("bad_grid_code",)
    )


@pytest.mark.parametrize("token", ["网格员", "Go", "G", "网格", "girl"])
def test_words_that_only_look_like_grid_prefixes_are_details(token: str) -> None:
    got = parse(f"R 1 {token} 有情况")
    assert got == msg("report", category="CHILD", details=f"{token} 有情况")


def test_bare_grid_code_only_in_numeric_form() -> None:
    assert parse("1 1 110105-003-012 x").grid_code == "110105003012"
    assert parse("1 3 110105003 x").grid_code == "110105003"
    assert parse("R 1 110105003012 x") == msg("report", category="CHILD", details="110105003012 x")
    assert parse("1 CHILD 110105003012 x").details == "110105003012 x"
    assert parse("1 1 12345 号楼") == msg("report", category="CHILD", details="12345 号楼")
    assert parse("1 1 1101050030121234 x").errors == ()


def test_grid_token_later_in_details_is_found_and_kept() -> None:
    got = parse("S 402913 在车站看到 @110105003007")
    assert got == msg(
        "sighting",
        alert_code="402913",
        grid_code="110105003007",
        details="在车站看到 @110105003007",
    )


# --- codes -------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["S", "发现", "线索", "2", "OK", "已排查", "排查", "3"])
def test_alert_code_kinds(first: str) -> None:
    kind = "sighting" if first in FIRST_TOKENS["sighting"] else "swept"
    assert parse(f"{first} 402913") == msg(kind, alert_code="402913")
    assert parse(f"{first} 402913 @110105003007") == msg(
        kind, alert_code="402913", grid_code="110105003007"
    )


@pytest.mark.parametrize(
    ("text", "details"),
    [
        ("S", ""),
        ("S 40291 看到", "40291 看到"),
        ("S 4029133 看到", "4029133 看到"),
        ("S R7K3Q9M", "R7K3Q9M"),
        ("OK 四零二九一三", "四零二九一三"),
        ("排查 ٤٠٢٩١٣", "٤٠٢٩١٣"),
        ("S @110105003007 看到", "@110105003007 看到"),
    ],
)
def test_missing_alert_code(text: str, details: str) -> None:
    got = parse(text)
    assert got.kind in ("sighting", "swept")
    assert got.alert_code is None
    assert got.errors == ("missing_code",)
    assert got.details == details


def test_swept_with_location_and_leftover_text() -> None:
    got = parse("已排查 402913 网格110105003007 全部排查完毕")
    assert got == msg(
        "swept", alert_code="402913", grid_code="110105003007", details="全部排查完毕"
    )


def test_bad_grid_after_alert_code() -> None:
    got = parse("S 402913 @12 看到")
    assert got == msg(
        "sighting", alert_code="402913", details="@12 看到", errors=("bad_grid_code",)
    )


@pytest.mark.parametrize("text", ["Q R7K3Q9M", "查询 r7k3q9m", "4 R7k3q9M", "q：R7K3Q9M"])
def test_status_code_upper_cased(text: str) -> None:
    assert parse(text) == msg("status", report_code="R7K3Q9M")


@pytest.mark.parametrize("code", ["R7K3Q9I", "R7K3Q9L", "R7K3Q9O", "R7K3Q9U", "R7K3Q9", "R7K3Q9MM"])
def test_status_rejects_bad_report_codes(code: str) -> None:
    assert parse(f"Q {code}") == msg("status", details=code, errors=("missing_code",))


def test_status_without_code() -> None:
    assert parse("查询") == msg("status", errors=("missing_code",))
    assert parse("Q 402913") == msg("status", details="402913", errors=("missing_code",))


def test_report_code_alphabet_is_crockford() -> None:
    assert len(REPORT_CODE_ALPHABET) == 32
    assert len(set(REPORT_CODE_ALPHABET)) == 32
    assert set(REPORT_CODE_ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("ILOU")


@pytest.mark.parametrize("code", ["R7K3Q9M", "r7k3q9m", "R000000", "RZZZZZZ", "RABCDEF"])
def test_is_report_code_accepts(code: str) -> None:
    assert is_report_code(code)


@pytest.mark.parametrize(
    "code", ["", "R", "7K3Q9M1", "X7K3Q9M", "R7K3Q9I", "R7K3Q9", "R7K3Q9M ", "Ｒ7K3Q9M", "R7K3Q9MX"]
)
def test_is_report_code_rejects(code: str) -> None:
    assert not is_report_code(code)


@given(
    st.text(alphabet=REPORT_CODE_ALPHABET + REPORT_CODE_ALPHABET.lower(), min_size=6, max_size=6)
)
@settings(max_examples=100)
def test_every_crockford_code_is_a_report_code(body: str) -> None:
    assert is_report_code("R" + body)
    assert parse("Q R" + body).report_code == "R" + body.upper()


# --- the result type, limits and robustness -----------------------------------------


def test_parsed_message_is_frozen() -> None:
    got = parse("OK 402913")
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.kind = "help"  # type: ignore[misc]


def test_details_truncated_at_2000() -> None:
    body = "男孩" * 1500
    got = parse(f"R 1 {body}")
    assert got.details == body[:MAX_DETAILS]
    assert got.errors == ("details_truncated",)
    assert parse(body).details == body[:MAX_DETAILS]
    assert parse(body).errors == ("details_truncated",)


def test_exactly_2000_characters_is_not_truncated() -> None:
    body = "x" * MAX_DETAILS
    assert parse(f"R 1 {body}") == msg("report", category="CHILD", details=body)


def test_huge_input_is_cut_quickly() -> None:
    huge = "R 1 " + "村" * 5_000_000
    start = time.perf_counter()
    got = parse(huge)
    assert time.perf_counter() - start < 1.0
    assert got.kind == "report"
    assert len(got.details) == MAX_DETAILS
    assert "details_truncated" in got.errors


def test_long_run_of_combining_marks_is_not_quadratic() -> None:
    # NFKC sorts combining marks with an insertion sort; the input cap bounds it.
    marks = sorted(
        (chr(c) for c in range(0x300, 0x370) if unicodedata.combining(chr(c))),
        key=unicodedata.combining,
        reverse=True,
    )
    text = "a" + "".join(marks[i % len(marks)] for i in range(200_000))
    start = time.perf_counter()
    got = parse(text)
    assert time.perf_counter() - start < 2.0
    assert got.kind == "free_text"


def test_lone_surrogates_and_controls_do_not_raise() -> None:
    for text in ["\ud800", "R 1 \udfff x", "\x00\x01\x1b", "S \ud83d\ude00 402913", "\uffff"]:
        got = parse(text)
        assert got.kind in KINDS
        assert "parser_error" not in got.errors


def test_internal_bug_becomes_free_text_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str) -> ParsedMessage:
        raise RuntimeError("bug")

    monkeypatch.setattr(grammar, "_parse", broken)
    got = parse("R 1 男孩被抱走")
    assert got == msg("free_text", details="R 1 男孩被抱走", errors=("parser_error",))


# --- properties ----------------------------------------------------------------------


def check_well_formed(text: str, got: ParsedMessage) -> None:
    assert got.kind in KINDS
    if got.kind == "report":
        assert got.category in (*CATEGORIES, UNCLASSIFIED)
    elif got.kind == "free_text":
        assert got.category is None or got.category in CATEGORIES
    else:
        assert got.category is None
    if got.grid_code is not None:
        assert got.grid_code.isascii()
        assert got.grid_code.isdigit()
        assert 9 <= len(got.grid_code) <= 15
    if got.alert_code is not None:
        assert got.kind in ("sighting", "swept")
        assert got.alert_code.isascii()
        assert got.alert_code.isdigit()
        assert len(got.alert_code) == 6
    if got.report_code is not None:
        assert got.kind == "status"
        assert is_report_code(got.report_code)
        assert got.report_code == got.report_code.upper()
    assert isinstance(got.details, str)
    assert len(got.details) <= MAX_DETAILS
    assert got.details == got.details.strip()
    assert isinstance(got.errors, tuple)
    assert set(got.errors) <= KNOWN_ERRORS
    assert len(got.errors) == len(set(got.errors))
    if len(text) <= 1000:
        normalised = unicodedata.normalize("NFKC", text).strip()
        if len(normalised) <= MAX_DETAILS:
            # Nothing is dropped: the details are the tail of what was sent.
            assert normalised.endswith(got.details)
            assert "details_truncated" not in got.errors


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.text())
@FAST
def test_any_text_parses_to_a_well_formed_message(text: str) -> None:
    check_well_formed(text, parse(text))


@given(st.binary(max_size=400))
@FAST
def test_binary_looking_text_parses(data: bytes) -> None:
    for text in (data.decode("latin-1"), data.decode("utf-8", "replace")):
        check_well_formed(text, parse(text))


@given(st.text(max_size=30), st.text(min_size=1, max_size=40))
@settings(max_examples=30, deadline=None)
def test_huge_text_parses(head: str, unit: str) -> None:
    text = head + " " + unit * (10_000 // len(unit) + 1)
    got = parse(text)
    check_well_formed(text, got)
    if unit.isspace():
        assert got.errors == parse(head).errors
    elif got.details:
        # The input was cut before NFKC; what is left is still about 2,000 characters.
        assert "details_truncated" in got.errors
        assert len(got.details) > MAX_DETAILS - 50


ALL_FIRST = [token for tokens in FIRST_TOKENS.values() for token in tokens]
ARGUMENTS = st.one_of(
    st.sampled_from(
        [
            "1",
            "9",
            "0",
            "CHILD",
            "拐卖儿童",
            "其他",
            "402913",
            "R7K3Q9M",
            "r7k3q9m",
            "@110105003012",
            "G110-105-003",
            "网格110105003012",
            "@12",
            "@",
            "G",
            "网格员",
            "110105003012",
            "男孩",
            "van",
            "。",
            "＠１２３４５６７８９",
        ]
    ),
    st.text(max_size=12),
)
SEPARATOR_RUNS = st.lists(st.sampled_from([*SEPARATORS, "\u3000"]), min_size=1, max_size=3).map(
    "".join
)
# An empty separator glues two arguments into one token, which is worth trying too.
ARGUMENT_TAIL = st.lists(
    st.tuples(st.one_of(SEPARATOR_RUNS, st.just("")), ARGUMENTS), max_size=6
).map(lambda pairs: "".join(sep + arg for sep, arg in pairs))
GRAMMAR_LIKE = st.builds(
    lambda first, sep, tail: first + sep + tail,
    st.sampled_from(ALL_FIRST),
    SEPARATOR_RUNS,
    ARGUMENT_TAIL,
)
KIND_OF_FIRST = {token: kind for kind, tokens in FIRST_TOKENS.items() for token in tokens}


@given(st.sampled_from(ALL_FIRST), SEPARATOR_RUNS, ARGUMENT_TAIL)
@FAST
def test_grammar_like_text_parses_to_a_well_formed_message(first: str, sep: str, tail: str) -> None:
    text = first + sep + tail
    got = parse(text)
    check_well_formed(text, got)
    assert got.kind == KIND_OF_FIRST[first]


FULL_WIDTH = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}, " ": "\u3000"})


@given(
    st.one_of(GRAMMAR_LIKE, st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
)
@FAST
def test_full_width_input_parses_like_ascii(text: str) -> None:
    assert parse(text.translate(FULL_WIDTH)) == parse(unicodedata.normalize("NFKC", text))


@given(st.text(max_size=200))
@FAST
def test_parse_is_stable_under_nfkc(text: str) -> None:
    assert parse(unicodedata.normalize("NFKC", text)) == parse(text)


@pytest.mark.parametrize(("text", "kind", "alert", "details"), [
    ("S402913 城关车站", "sighting", "402913", "城关车站"),
    ("s402913", "sighting", "402913", ""),
    ("Ｓ４０２９１３车站门口", "sighting", "402913", "车站门口"),  # full-width, as phones type it
    ("发现402913 车站", "sighting", "402913", "车站"),
    ("OK402913", "swept", "402913", ""),
    ("ok４０２９１３", "swept", "402913", ""),
    ("排查402913", "swept", "402913", ""),
])
def test_an_alert_answer_may_have_its_code_glued_on(text, kind, alert, details) -> None:
    parsed = parse(text)
    assert (parsed.kind, parsed.alert_code, parsed.details) == (kind, alert, details)


def test_a_glued_answer_keeps_its_grid_code() -> None:
    assert parse("OK402913 @110105003012").grid_code == "110105003012"


@pytest.mark.parametrize("text", ["S4029131", "2402913", "OK40291", "Sam402913"])
def test_a_glued_code_is_exactly_six_digits_after_a_word_keyword(text) -> None:
    assert parse(text).kind == "free_text"
