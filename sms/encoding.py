"""GSM 03.38 / UCS-2 coding and segmentation of SMS text (3GPP TS 23.038, 23.040)."""

from __future__ import annotations

import re
from typing import Final, Literal

Coding = Literal["gsm7", "ucs2"]

# The default alphabet in code order 0x00-0x7F; 0x1B is the escape to the
# extension table, not a character, so it is left out.
_BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_BASIC: Final = frozenset(_BASIC_TABLE) - {"\x1b"}
# Each costs two septets: the escape and the character.
GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153  # a concatenated part loses 7 septets to the UDH
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67  # a concatenated part loses 3 UTF-16 units to the UDH

_NOT_GSM7: Final = re.compile(
    "[^" + "".join(re.escape(c) for c in sorted(GSM7_BASIC | GSM7_EXTENSION)) + "]"
)
_GSM7_EXTENSION: Final = re.compile(
    "[" + "".join(re.escape(c) for c in sorted(GSM7_EXTENSION)) + "]"
)
# Outside the BMP: a surrogate pair, two UTF-16 units.
_ASTRAL: Final = re.compile("[\U00010000-\U0010ffff]")


def coding(text: str) -> Coding:
    """The coding a phone needs for `text`: GSM-7 when every character has a septet."""
    return "ucs2" if _NOT_GSM7.search(text) else "gsm7"


def _cost(char: str, gsm7: bool) -> int:
    if gsm7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if char > "\uffff" else 1


def _length(text: str, gsm7: bool) -> int:
    if gsm7:
        return len(text) + len(_GSM7_EXTENSION.findall(text))
    return len(text) + len(_ASTRAL.findall(text))


def _cuts(text: str, gsm7: bool) -> list[int]:
    """Where each concatenated part starts; greedy, which gives the fewest parts."""
    limit = GSM7_PART if gsm7 else UCS2_PART
    cuts = [0]
    used = 0
    for index, char in enumerate(text):
        cost = _cost(char, gsm7)
        # An escape pair or a surrogate pair that does not fit moves whole.
        if used + cost > limit:
            cuts.append(index)
            used = 0
        used += cost
    return cuts


def segments(text: str) -> int:
    """How many SMS `text` takes (an empty text still takes one)."""
    gsm7 = coding(text) == "gsm7"
    if _length(text, gsm7) <= (GSM7_SINGLE if gsm7 else UCS2_SINGLE):
        return 1
    return len(_cuts(text, gsm7))


def split(text: str) -> list[str]:
    """`text` cut into SMS parts, never inside an escape pair or a surrogate pair."""
    gsm7 = coding(text) == "gsm7"
    if _length(text, gsm7) <= (GSM7_SINGLE if gsm7 else UCS2_SINGLE):
        return [text]
    cuts = _cuts(text, gsm7)
    return [text[start:end] for start, end in zip(cuts, [*cuts[1:], len(text)], strict=True)]


def fits_one(text: str) -> bool:
    """True when `text` goes as a single SMS (160 GSM-7 septets or 70 UCS-2 units)."""
    return segments(text) == 1
