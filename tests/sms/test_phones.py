"""Phone numbers: E.164 for China and its border countries, masking for logs."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from sms.phones import ACCEPTED_REGIONS, InvalidPhone, mask, normalise


def test_accepted_regions_are_china_and_its_neighbours() -> None:
    # fmt: off
    neighbours = ["CN", "MM", "VN", "LA", "KP", "RU", "MN", "KZ", "KG", "TJ", "AF", "PK", "IN",
                  "NP", "BT"]
    # fmt: on
    assert sorted(ACCEPTED_REGIONS) == sorted(neighbours)


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "+8613800138000",
        "8613800138000",
        "008613800138000",
        "＋８６　１３８　００１３　８０００",
        "１３８００１３８０００",
        " (+86) 138 0013 8000 ",
    ],
)
def test_chinese_mobile_in_any_usual_writing(raw: str) -> None:
    assert normalise(raw) == "+8613800138000"


def test_chinese_landline() -> None:
    assert normalise("010 6552 9988") == "+861065529988"


def example(region: str) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    if number is None:
        number = phonenumbers.example_number(region)
    assert number is not None
    return number


@pytest.mark.parametrize("region", sorted(ACCEPTED_REGIONS))
def test_every_accepted_region(region: str) -> None:
    number = example(region)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    assert normalise(e164) == e164
    assert normalise(international) == e164
    assert normalise(national, region=region) == e164
    assert normalise(national, region=region.lower()) == e164


def test_shared_country_code_seven() -> None:
    assert normalise("+7 912 345 67 89") == "+79123456789"  # Russia
    assert normalise("+7 701 123 4567") == "+77011234567"  # Kazakhstan


@pytest.mark.parametrize("region", ["US", "GB", "HK", "MO", "TW", "JP", "KR", "TH", "DE"])
def test_other_countries_are_not_accepted(region: str) -> None:
    e164 = phonenumbers.format_number(example(region), PhoneNumberFormat.E164)
    with pytest.raises(InvalidPhone) as caught:
        normalise(e164)
    assert caught.value.reason == "country_not_accepted"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "unparseable"),
        ("abc", "unparseable"),
        ("call me", "unparseable"),
        ("123", "invalid"),
        ("+86 123", "invalid"),
        ("+86 1380013800", "invalid"),  # one digit short
        ("+999 1234 5678", "invalid"),  # no such country code
        ("+", "unparseable"),
        ("+86 1380013800012345", "too_long"),
        ("1" * 30, "too_long"),
        ("1" * 300, "too_long"),
        ("+1 650 253 0000", "country_not_accepted"),
        ("+852 9123 4567", "country_not_accepted"),
    ],
)
def test_rejections_carry_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise(raw)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_rejection_message_never_quotes_the_number() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise("+1 650 253 0000")
    assert "650" not in str(caught.value)
    assert "253" not in str(caught.value)


def outcome(raw: str) -> str | InvalidPhone:
    try:
        return normalise(raw)
    except InvalidPhone as exc:
        return exc


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_normalise_returns_e164_or_raises_invalid_phone(raw: str) -> None:
    got = outcome(raw)
    if isinstance(got, InvalidPhone):
        assert got.reason in ("unparseable", "invalid", "country_not_accepted", "too_long")
    else:
        assert got.startswith("+")
        assert got[1:].isascii()
        assert got[1:].isdigit()
        assert normalise(got) == got


@given(st.from_regex(r"\+?(86|7|95|84|1|44)?[0-9 \-]{0,18}", fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_digit_strings_return_e164_or_raise_invalid_phone(raw: str) -> None:
    got = outcome(raw)
    if isinstance(got, str):
        number = phonenumbers.parse(got)
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.region_code_for_number(number) in ACCEPTED_REGIONS
    else:
        assert got.reason in ("unparseable", "invalid", "country_not_accepted", "too_long")


# --- mask ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+8613800005678", "+86138****5678"),
        ("+861065529988", "+8610****9988"),
        ("+79123456789", "+791****6789"),
        ("+97688112233", "+976****2233"),
        ("+97712345678", "+977****5678"),
        ("+9771234567", "+977****567"),
        ("+9771234", "+977****"),
        ("+86 138 0000 5678", "+86138****5678"),
    ],
)
def test_mask(e164: str, masked: str) -> None:
    assert mask(e164) == masked


@pytest.mark.parametrize(
    ("raw", "masked"), [("", "****"), ("+", "****"), ("garbage", "****"), ("0012345678", "****78")]
)
def test_mask_of_something_that_is_not_a_number(raw: str, masked: str) -> None:
    assert mask(raw) == masked


@given(st.text(alphabet="+0123456789 ", max_size=24))
@settings(max_examples=300, deadline=None)
def test_mask_hides_at_least_half_of_a_long_number(raw: str) -> None:
    digits = "".join(c for c in raw if c.isdigit())
    masked = mask(raw)
    shown = sum(c.isdigit() for c in masked)
    if len(digits) >= 8:
        assert "*" in masked
        assert digits not in masked.replace("+", "")
        assert masked.count("*") >= 4
    assert shown <= len(digits)


@given(st.sampled_from(sorted(ACCEPTED_REGIONS)))
@settings(max_examples=30, deadline=None)
def test_mask_keeps_the_country_code_of_every_accepted_region(region: str) -> None:
    e164 = phonenumbers.format_number(example(region), PhoneNumberFormat.E164)
    country = str(phonenumbers.country_code_for_region(region))
    masked = mask(e164)
    assert masked.startswith("+" + country)
    assert masked.endswith(e164[-4:])
    assert len(masked) == len(e164)
