"""The optional SMS PIN of mandated reporters: taken off the front of a message.

A deployment may require registered reporters to start each SMS with their
PIN, so a spoofed sender number does not pass for a grid worker: `P` (or
`PIN`, `密码`, `口令`) and 4 to 6 digits, then the message as printed on the
card — `P482913 R 1 @530627001002003 男孩被抱上面包车`. The PIN is not part of
the card's grammar (SMS_GRAMMAR.md stays as it is): it is split off before
`sms.grammar.parse`, always, so it never ends up in a report's details.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

PIN_DIGITS: Final = (4, 6)
# The separators of the card's grammar, after NFKC (full-width forms folded).
_PIN = re.compile(r"\s*(?:PIN|P|密码|口令)[\s,;:#*、，；：]*([0-9]{4,6})(?=$|[\s,;:#*、，；：])",
                  re.IGNORECASE)
_SEPARATORS = " \t\r\n,;:#*、，；："


def split_pin(text: str) -> tuple[str | None, str]:
    """(the PIN, the rest of the message) when `text` starts with one, else (None, text).

    The rest is the original text after the PIN and its separators, so the
    grammar sees the message exactly as it would have without a PIN.
    """
    folded = unicodedata.normalize("NFKC", text[:64])
    found = _PIN.match(folded)
    if found is None:
        return None, text
    # NFKC can change lengths (a ligature becomes several letters): cut the
    # original where its folded prefix ends.
    cut = _original_length(text, folded[: found.end()])
    return found.group(1), text[cut:].lstrip(_SEPARATORS)


def _original_length(text: str, folded_prefix: str) -> int:
    """How many characters of `text` fold (NFKC) to `folded_prefix`."""
    for end in range(1, min(len(text), 64) + 1):
        if unicodedata.normalize("NFKC", text[:end]) == folded_prefix:
            return end
    return len(folded_prefix)
