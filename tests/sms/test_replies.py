"""Every reply fits one SMS with the longest values it can carry, in every language
(SMS_GRAMMAR.md: Replies; docs/sms-languages.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms import replies
from sms.encoding import coding, fits_one, segments

LANGS = ("zh", "en", "ug", "bo", "ii")
LONG_STATION = "某某某自治县公安局某某某某某某某某边境派出所"
LONG_CELL = "某某街道某某某某社区第12网格加长名称再加长再加长"
LONG_UNIT = "某某自治县某某某某乡某某某某村某某某某某中心小学"
CODE = "RZZZZZZ"
ALERT = "402913"
LAST_MINUTE = time(23, 59)
LONG_TEXT = "穿红色上衣蓝色裤子的男孩约五岁左右说本地话被一名中年男子抱走" * 3
HAN = re.compile("[\u4e00-\u9fff]")

Render = Callable[[str], str]

# (what, render in a language, most segments): every message with its longest values.
MESSAGES: list[tuple[str, Render, int]] = [
    ("receipt", lambda lang: replies.receipt(CODE, LONG_STATION, lang=lang), 1),
    ("receipt unrouted", lambda lang: replies.receipt(CODE, None, lang=lang), 1),
    ("triage receipt", lambda lang: replies.triage_receipt(CODE, LONG_STATION, lang=lang), 1),
    ("triage unrouted", lambda lang: replies.triage_receipt(CODE, None, lang=lang), 1),
    *((f"fix {e}", lambda lang, e=e: replies.fix(e, lang=lang), 1)
      for e in (*replies.FIXES, "something_new")),
    *((f"status {s}", lambda lang, s=s: replies.status(CODE, s, lang=lang), 1)
      for s in (*replies.STATUS_NAMES, "odd")),
    *((f"status {s} at", lambda lang, s=s: replies.status(CODE, s, LONG_STATION, lang=lang), 1)
      for s in (*replies.STATUS_NAMES, "odd")),
    *((f"linked {c} {raised}", lambda lang, c=c, raised=raised:
       replies.linked_report_notice(CODE, CODE, c, raised, lang=lang), 1)
      for c in replies.CATEGORY_NAMES for raised in (True, False)),
    ("not found", lambda lang: replies.not_found(CODE, lang=lang), 1),
    ("sighting", lambda lang: replies.sighting_receipt(ALERT, lang=lang), 1),
    ("swept", lambda lang: replies.swept_ack(ALERT, lang=lang), 1),
    ("unsubscribed", lambda lang: replies.unsubscribed(lang=lang), 1),
    ("cannot unsubscribe", lambda lang: replies.cannot_unsubscribe(lang=lang), 1),
    ("rate limited", lambda lang: replies.rate_limited(lang=lang), 1),
    *((f"dispatch {c}", lambda lang, c=c: replies.dispatch_notice(CODE, c, LONG_CELL, lang=lang),
       1) for c in replies.CATEGORY_NAMES),
    ("dispatch nowhere", lambda lang: replies.dispatch_notice(CODE, "ORIGIN", None, lang=lang), 1),
    *((f"escalation {c}", lambda lang, c=c:
       replies.escalation_notice(CODE, c, 99999, 12, lang=lang), 1)
      for c in replies.CATEGORY_NAMES),
    ("transfer", lambda lang: replies.transfer_request_notice(CODE, LONG_STATION, lang=lang), 1),
    ("closed", lambda lang: replies.closed_notice(CODE, lang=lang), 1),
    *((f"pin {p}", lambda lang, p=p: replies.pin_problem(p, lang=lang), 1)
      for p in replies.PIN_PROBLEMS),
    *((f"location {f}", lambda lang, f=f: str(replies.location_note([f], lang=lang)), 1)
      for f in replies.LOCATION_NOTES),
    ("welcome", lambda lang: replies.welcome(LONG_CELL, LONG_UNIT, lang=lang), 2),
    ("welcome no unit", lambda lang: replies.welcome(LONG_CELL, None, lang=lang), 2),
    ("alert", lambda lang: replies.alert(ALERT, LONG_TEXT, LAST_MINUTE, LONG_TEXT, lang=lang), 1),
    ("alert update", lambda lang: replies.alert_update(ALERT, LONG_TEXT, lang=lang), 1),
    ("alert found", lambda lang: replies.alert_found_thanks(ALERT, lang=lang), 1),
    ("alert cancelled", lambda lang: replies.alert_cancelled(ALERT, lang=lang), 1),
    ("deactivated", lambda lang: replies.reporter_deactivated(lang=lang), 1),
    ("help", lambda lang: replies.help_text(lang=lang), 3),
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("what", "render", "most"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_each_message_fits_its_segments(lang, what, render, most):
    text = render(lang)
    assert text.strip()
    assert segments(text) <= most, (lang, what, len(text), text)


def test_receipt_carries_code_and_station():
    assert replies.receipt("R7K3Q9M", "城关派出所") == "已收到举报R7K3Q9M，已转交城关派出所。"


def test_a_receipt_in_english_says_the_same():
    text = replies.receipt("R7K3Q9M", "城关派出所", lang="en")
    assert "R7K3Q9M" in text
    assert "城关派出所" in text
    assert not HAN.search(text.replace("城关派出所", ""))


def test_help_may_take_several_segments_but_not_many():
    assert 1 < segments(replies.help_text()) <= 3


def test_every_category_has_a_chinese_name():
    from sms.grammar import CATEGORIES, UNCLASSIFIED

    assert set(replies.CATEGORY_NAMES) == {*CATEGORIES, UNCLASSIFIED}


def test_dispatch_notice_names_no_person():
    text = replies.dispatch_notice("R7K3Q9M", "CHILD", "城南社区第1网格")
    assert text == "新线索R7K3Q9M：拐卖儿童，城南社区第1网格。请尽快签收。"


def test_the_status_names_the_station_that_holds_the_report():
    assert replies.status(CODE, "routed", "南台派出所") == f"举报{CODE}：已转交南台派出所。"
    assert replies.status(CODE, "acknowledged", "南台派出所") == f"举报{CODE}：南台派出所已签收。"
    assert replies.status(CODE, "closed", "南台派出所") == f"举报{CODE}：已办结。"


def test_the_alert_of_the_tracker_is_sent_as_written():
    # The example of issue 13: one UCS-2 segment.
    text = replies.alert("402913", "男孩约5岁红上衣", time(11, 20), "城关车站")
    assert text == ("【寻人402913】男孩约5岁红上衣，11:20在城关车站走失。"
                    "见到回S402913+地点，已找过回OK402913")
    assert fits_one(text)


@pytest.mark.parametrize("lang", LANGS)
def test_a_long_alert_is_cut_in_its_description_and_place_never_its_code_or_time(lang):
    text = replies.alert(ALERT, LONG_TEXT, time(7, 5), LONG_TEXT, lang=lang)
    assert fits_one(text)
    assert "07:05" in text
    assert f"S{ALERT}" in text
    assert f"OK{ALERT}" in text
    assert text.count("…") == 2  # both were cut, each marked
    # Longest first: neither is left much shorter than the other.
    kept = [len(part) for part in re.findall("穿[^…]*…", text)]
    assert len(kept) == 2, text
    assert abs(kept[0] - kept[1]) <= 1, text


def test_a_long_description_gives_way_before_a_short_place():
    text = replies.alert(ALERT, LONG_TEXT, time(11, 20), "城关车站")
    assert fits_one(text)
    assert "在城关车站走失" in text
    assert "…，11:20" in text


def test_an_english_alert_in_plain_letters_stays_gsm7_when_cut():
    text = replies.alert(ALERT, "boy about 5, red jacket, blue trousers, speaks the local "
                         "dialect, taken by a man in his forties in a white van " * 3,
                         time(11, 20), "Chengguan bus station", lang="en")
    assert coding(text) == "gsm7"
    assert fits_one(text)
    assert "..." in text
    assert "Chengguan bus station" in text


@pytest.mark.parametrize("lang", LANGS)
def test_the_welcome_names_the_cell_the_unit_and_how_to_report(lang):
    text = replies.welcome("城南社区第1网格", "城关镇中心小学", lang=lang)
    assert "城南社区第1网格" in text
    assert "城关镇中心小学" in text
    assert "R 1 @" in text or "R 类别 @" in text
    assert "城关镇中心小学" not in replies.welcome("城南社区第1网格", None, lang=lang)


def test_a_note_joins_a_chinese_receipt_without_a_space_and_an_english_one_with_one():
    note = replies.location_note(["unplaced_review"])
    joined, apart = replies.with_note(replies.receipt(CODE, "城关派出所"), note)
    assert apart is None
    assert joined.endswith("。" + str(note))
    en_note = replies.location_note(["unplaced_review"], lang="en")
    joined, apart = replies.with_note(replies.receipt(CODE, "Chengguan PS", lang="en"), en_note)
    assert apart is None
    assert joined.endswith(". " + str(en_note))


@pytest.mark.parametrize("lang", ["ug", "bo"])
def test_a_note_is_spaced_from_a_receipt_that_ends_in_a_chinese_name_or_a_shad(lang):
    receipt = replies.receipt(CODE, "城关派出所", lang=lang)
    assert replies.with_note(receipt, "N") == (receipt + " N", None)


def test_a_note_too_long_for_the_receipt_goes_apart():
    receipt = replies.triage_receipt(CODE, LONG_STATION)
    note = replies.location_note(["gps_outside_grid"])
    assert replies.with_note(receipt, note) == (receipt, note)


# English: every message complete and in plain letters (GSM-7: 160 characters a segment)
# when the values it carries are.
@pytest.mark.parametrize(("what", "render", "most"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_english_messages_are_english_and_gsm7(what, render, most):
    ascii_values = {LONG_STATION: "Chengguan PS", LONG_CELL: "Chengnan 1", LONG_UNIT: "No 1 School",
                    LONG_TEXT: "boy in red"}
    original = {k: v for k, v in globals().items() if isinstance(v, str) and v in ascii_values}
    try:
        globals().update({k: ascii_values[v] for k, v in original.items()})
        text = render("en")
    finally:
        globals().update(original)
    assert not HAN.search(text), text
    assert coding(text) == "gsm7", text


# The messages that must be in each minority language (tracker issue 12).
REQUIRED: list[tuple[str, Render]] = [
    ("receipt", lambda lang: replies.receipt(CODE, "X", lang=lang)),
    ("receipt unrouted", lambda lang: replies.receipt(CODE, None, lang=lang)),
    ("triage receipt", lambda lang: replies.triage_receipt(CODE, "X", lang=lang)),
    ("triage unrouted", lambda lang: replies.triage_receipt(CODE, None, lang=lang)),
    *((f"fix {e}", lambda lang, e=e: replies.fix(e, lang=lang))
      for e in (*replies.FIXES, "something_new")),
    *((f"pin {p}", lambda lang, p=p: replies.pin_problem(p, lang=lang))
      for p in replies.PIN_PROBLEMS),
    ("rate limited", lambda lang: replies.rate_limited(lang=lang)),
    ("welcome", lambda lang: replies.welcome("X", "Y", lang=lang)),
    ("welcome no unit", lambda lang: replies.welcome("X", None, lang=lang)),
    ("alert", lambda lang: replies.alert(ALERT, "5", time(11, 20), "X", lang=lang)),
    ("alert update", lambda lang: replies.alert_update(ALERT, "5", lang=lang)),
    ("alert found", lambda lang: replies.alert_found_thanks(ALERT, lang=lang)),
    ("alert cancelled", lambda lang: replies.alert_cancelled(ALERT, lang=lang)),
    ("sighting", lambda lang: replies.sighting_receipt(ALERT, lang=lang)),
    ("swept", lambda lang: replies.swept_ack(ALERT, lang=lang)),
    ("deactivated", lambda lang: replies.reporter_deactivated(lang=lang)),
]
SCRIPTS = {"ug": re.compile("[\u0600-\u06ff]"), "bo": re.compile("[\u0f00-\u0fff]")}


# ii (Yi) is not here: its catalog has no translation yet and falls back to Chinese
# (docs/sms-languages.md).
@pytest.mark.parametrize("lang", sorted(SCRIPTS))
@pytest.mark.parametrize(("what", "render"), REQUIRED, ids=[m[0] for m in REQUIRED])
def test_minority_languages_have_the_messages_reporters_need(lang, what, render):
    text = render(lang)
    assert SCRIPTS[lang].search(text), text
    assert not HAN.search(text), text


def _one_at_a_time(template: str, **values: str) -> str:
    """The cutting rule as docs/sms-languages.md states it, one character at a time."""
    values = {name: value[:160] for name, value in values.items()}
    text = template.format(**values)
    ellipsis = "…" if coding(text) == "ucs2" else "..."
    kept = dict(values)
    while not fits_one(text) and any(kept.values()):
        longest = max(kept, key=lambda name: len(kept[name]))
        kept[longest] = kept[longest][:-1]
        text = template.format(**{n: kept[n] + (ellipsis if kept[n] != values[n] else "")
                                  for n in values})
    return text


@settings(max_examples=300, deadline=None)
@given(template=st.sampled_from([
           "【寻人402913】{description}，11:20在{place}走失。见到回S402913+地点，已找过回OK402913",
           "MISSING 402913: {description}, 11:20 {place}. Seen: S402913 Swept: OK402913"]),
       description=st.text(alphabet="ab c[€男孩𠮷", max_size=200),
       place=st.text(alphabet="xy{}车站𠮷", max_size=60))
def test_cutting_many_characters_at_once_keeps_the_one_at_a_time_rule(template, description,
                                                                       place):
    assert replies._fit(template, description=description, place=place) == _one_at_a_time(
        template, description=description, place=place)
