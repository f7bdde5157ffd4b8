"""Splitting the optional PIN off the front of an SMS."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.grammar import parse
from sms.pin import split_pin


@pytest.mark.parametrize(("text", "pin", "rest"), [
    ("P4821 R 1 @530627001002003 男孩被抱走", "4821", "R 1 @530627001002003 男孩被抱走"),
    ("p482913 Q R7K3Q9M", "482913", "Q R7K3Q9M"),
    ("PIN 4821，举报 拐卖儿童 村口", "4821", "举报 拐卖儿童 村口"),
    ("密码：482913 1 1 530627001002003 面包车", "482913", "1 1 530627001002003 面包车"),
    ("口令4821#R 1 test", "4821", "R 1 test"),
    ("Ｐ４８２１ Ｒ １ 全角", "4821", "Ｒ １ 全角"),  # full-width, as phones type it
    ("P4821", "4821", ""),
])
def test_a_leading_pin_is_split_off(text, pin, rest):
    assert split_pin(text) == (pin, rest)


@pytest.mark.parametrize("text", [
    "R 1 @530627001002003 男孩被抱上面包车",  # no PIN
    "P123 R 1 x",  # too short
    "P1234567 R 1 x",  # too long
    "P4821R 1 x",  # not followed by a separator
    "R 1 P4821 in the middle is details",
    "PASS 1234",
    "",
])
def test_text_without_a_leading_pin_is_left_alone(text):
    assert split_pin(text) == (None, text)


def test_the_rest_parses_as_the_card_says():
    pin, rest = split_pin("P4821 R 1 @530627001002003 男孩被抱上面包车")
    assert pin == "4821"
    parsed = parse(rest)
    assert (parsed.kind, parsed.category, parsed.grid_code) == ("report", "CHILD",
                                                                "530627001002003")
    assert "4821" not in parsed.details


@given(st.text())
def test_never_raises_and_never_loses_text(text):
    pin, rest = split_pin(text)
    if pin is None:
        assert rest == text
    else:
        assert pin.isdigit()
        assert 4 <= len(pin) <= 6
        assert text.endswith(rest)
