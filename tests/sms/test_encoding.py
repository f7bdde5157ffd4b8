"""GSM-7 / UCS-2 coding, segment counts and splitting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    coding,
    fits_one,
    segments,
    split,
)

EMOJI = "\U0001f600"  # outside the BMP: two UTF-16 units


def septets(text: str) -> int:
    return sum(2 if c in GSM7_EXTENSION else 1 for c in text)


def units(text: str) -> int:
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


# --- the tables --------------------------------------------------------------------


def test_table_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes less the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC


def test_basic_table_contents() -> None:
    printable_ascii = {chr(c) for c in range(0x20, 0x7F)}
    # Every printable ASCII character is GSM-7, in one table or the other, except `.
    assert printable_ascii - GSM7_BASIC - GSM7_EXTENSION == {"`"}
    for char in "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r":
        assert char in GSM7_BASIC
    for char in "ç€[]{}\\^~|\t":
        assert char not in GSM7_BASIC


def test_extension_table_contents() -> None:
    assert set("\f^{}\\[~]|€") == GSM7_EXTENSION


# --- coding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "gsm7"),
        ("Hello, world!", "gsm7"),
        ("Prix: 5€ {ok} [x] ~^|\\", "gsm7"),
        ("Ærø Ωμ", "ucs2"),  # Greek small mu is not in the table
        ("ça", "ucs2"),
        ("`", "ucs2"),
        ("\t", "ucs2"),
        ("已收到举报R7K3Q9M", "ucs2"),
        ("OK " + EMOJI, "ucs2"),
        ("\ud800", "ucs2"),
    ],
)
def test_coding(text: str, expected: str) -> None:
    assert coding(text) == expected


# --- segment counts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),  # 162 septets; 76 escape pairs per part
        ("€" * 152, 2),
        ("€" * 153, 3),
        # An escape pair never straddles a part, which costs a third part here.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        (EMOJI * 35, 1),  # 70 units
        (EMOJI * 36, 2),  # 33 per part
        (EMOJI * 66, 2),
        (EMOJI * 67, 3),
        # A surrogate pair never straddles a part either.
        ("中" * 66 + EMOJI + "中" * 66, 3),
        ("a" * 159 + "中", 3),  # one Chinese character makes the whole text UCS-2
    ],
)
def test_segments(text: str, count: int) -> None:
    assert segments(text) == count
    assert len(split(text)) == count
    assert fits_one(text) == (count == 1)


def test_reply_examples_fit_one_sms() -> None:
    assert fits_one("已收到举报R7K3Q9M，已转交城关派出所。")
    assert fits_one("Received R7K3Q9M, passed to the station. " * 3)
    assert not fits_one("Received R7K3Q9M, passed to the station. " * 4)


# --- split -------------------------------------------------------------------------


def test_split_short_text_is_one_part() -> None:
    assert split("") == [""]
    assert split("OK") == ["OK"]
    assert split("a" * 160) == ["a" * 160]


def test_split_gsm_parts() -> None:
    parts = split("a" * 152 + "€" + "a" * 152)
    assert parts == ["a" * 152, "€" + "a" * 151, "a"]


def test_split_ucs2_keeps_astral_characters_whole() -> None:
    parts = split("中" * 66 + EMOJI + "中" * 66)
    assert parts == ["中" * 66, EMOJI + "中" * 65, "中"]
    assert split(EMOJI * 36) == [EMOJI * 33, EMOJI * 3]


def check_parts(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) == segments(text)
    gsm7 = coding(text) == "gsm7"
    if len(parts) == 1:
        assert (septets(text) if gsm7 else units(text)) <= (GSM7_SINGLE if gsm7 else UCS2_SINGLE)
    else:
        for part in parts:
            assert part
            assert coding(part) == "ucs2" or gsm7
            assert (septets(part) if gsm7 else units(part)) <= (GSM7_PART if gsm7 else UCS2_PART)


GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)
MIXED_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(GSM7_EXTENSION)),
        st.sampled_from("中文举报"),
        st.sampled_from([EMOJI, "\U00020000", "\U0010ffff"]),
        st.characters(),
    ),
    max_size=400,
)


@given(GSM_TEXT)
@settings(max_examples=200, deadline=None)
def test_gsm_split_rejoins_and_parts_fit(text: str) -> None:
    assert coding(text) == "gsm7"
    check_parts(text)


@given(MIXED_TEXT)
@settings(max_examples=200, deadline=None)
def test_any_split_rejoins_and_parts_fit(text: str) -> None:
    check_parts(text)


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_segments_matches_a_naive_lower_bound(text: str) -> None:
    count = segments(text)
    if coding(text) == "gsm7":
        length, single, part = septets(text), GSM7_SINGLE, GSM7_PART
    else:
        length, single, part = units(text), UCS2_SINGLE, UCS2_PART
    if length <= single:
        assert count == 1
    else:
        # Never fewer parts than the plain division, and at most one more per part
        # for a pair pushed to the next one.
        assert count >= -(-length // part)
        assert count <= -(-length // (part - 1))
