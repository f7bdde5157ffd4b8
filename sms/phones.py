"""Phone numbers: E.164 normalisation for China and its border countries, masking for logs."""

from __future__ import annotations

from typing import Final, Literal

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

Reason = Literal["unparseable", "invalid", "country_not_accepted", "too_long"]

# China and the countries it borders: where reporters' and victims' phones come from.
ACCEPTED_REGIONS: Final = frozenset(
    ("CN", "MM", "VN", "LA", "KP", "RU", "MN", "KZ", "KG", "TJ", "AF", "PK", "IN", "NP", "BT")
)
_ACCEPTED_COUNTRY_CODES: Final = frozenset(
    phonenumbers.country_code_for_region(region) for region in ACCEPTED_REGIONS
)


class InvalidPhone(ValueError):
    """A phone number that cannot be used; `reason` says why, the message never quotes it."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"phone number rejected: {reason}")
        self.reason: Reason = reason


def normalise(raw: str, region: str = "CN") -> str:
    """`raw` as E.164 (`+8613800138000`), read as dialled in `region`; raises InvalidPhone."""
    try:
        number = phonenumbers.parse(raw, region.upper())
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.TOO_LONG:
            raise InvalidPhone("too_long") from exc
        if exc.error_type == NumberParseException.NOT_A_NUMBER:
            raise InvalidPhone("unparseable") from exc
        raise InvalidPhone("invalid") from exc  # unknown country code, too short
    if number.country_code not in _ACCEPTED_COUNTRY_CODES:
        raise InvalidPhone("country_not_accepted")
    if phonenumbers.is_possible_number_with_reason(number) == ValidationResult.TOO_LONG:
        raise InvalidPhone("too_long")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("invalid")
    # +7 is shared by RU and KZ (both accepted); checked anyway for shared codes.
    if phonenumbers.region_code_for_number(number) not in ACCEPTED_REGIONS:
        raise InvalidPhone("country_not_accepted")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """Whether a normalised number can receive SMS (a mobile, or a number that may be one)."""
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    return kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def mask(e164: str) -> str:
    """`+86138****5678` for logs: the country code, at least 4 digits hidden, at most 7 shown."""
    digits = "".join(c for c in e164 if "0" <= c <= "9")
    # Country codes are prefix-free, so the first known prefix is the one.
    country = next(
        (
            digits[:size]
            for size in (1, 2, 3)
            if len(digits) > size
            and digits[0] != "0"
            and int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        ),
        None,
    )
    if country is None:
        # Not a number we understand: show almost nothing rather than guess.
        return "****" + (digits[-2:] if len(digits) >= 8 else "")
    national = digits[len(country) :]
    size = len(national)
    tail = min(4, max(0, size - 4))
    head = min(3, max(0, size - tail - 4))
    return f"+{country}{national[:head]}{'*' * (size - head - tail)}{national[size - tail :]}"
