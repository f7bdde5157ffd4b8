"""The SMS message grammar taught on the reporting card (public contract: SMS_GRAMMAR.md).

`parse` turns any string into a `ParsedMessage` and never raises: a message it
cannot read is still a `free_text` report for a person to triage.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

KINDS: Final = ("report", "sighting", "swept", "status", "help", "unsubscribe", "free_text")
CATEGORIES: Final = (
    "CHILD",
    "WOMAN",
    "ORIGIN",
    "LABOUR",
    "ADOPT",
    "BIRTH",
    "ABUSE",
    "ONLINE",
    "OTHER",
)
UNCLASSIFIED: Final = "UNCLASSIFIED"
REPORT_CODE_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
MAX_DETAILS: Final = 2000

# Error codes put in ParsedMessage.errors.
UNKNOWN_CATEGORY: Final = "unknown_category"
MISSING_CODE: Final = "missing_code"
BAD_GRID_CODE: Final = "bad_grid_code"
DETAILS_TRUNCATED: Final = "details_truncated"
PARSER_ERROR: Final = "parser_error"

# NFKC reorders combining marks with an insertion sort, quadratic on long runs:
# cap the input first. Five times the details cap still leaves > 2,000
# characters after the strongest NFKC contraction (4 to 1, as in ᾇ).
_MAX_INPUT: Final = 5 * MAX_DETAILS

# After NFKC the full-width forms (，；：＃＊) are already ASCII; they stay listed
# so the class reads like the contract. Zero-width spaces are invisible, so a
# user cannot tell them from a space.
_SEP = r"\s,，、;；:：#＃*\u200b\u2060\ufeff"
_TOKEN: Final = re.compile(f"[^{_SEP}]+")
_HYPHENS = "-\u2010\u2011\u2012\u2013\u2212"
_DROP_HYPHENS: Final = str.maketrans("", "", _HYPHENS)
_GRID_BODY: Final = re.compile(f"[0-9{_HYPHENS}]+")
_GRID_BODY_START: Final = frozenset("0123456789" + _HYPHENS)
# A well-formed grid token anywhere in a text, as a whole token.
_GRID_ANYWHERE: Final = re.compile(f"(?<![^{_SEP}])(?:@|[Gg]|网格)([0-9{_HYPHENS}]+)(?![^{_SEP}])")
_ALERT_CODE: Final = re.compile(r"[0-9]{6}")
# An alert answer with its code glued on (S402913, OK402913, 发现402913): what a grid worker
# copies from the alert SMS. The digit keywords 2 and 3 are not taken glued (2402913 is no
# answer anyone means).
_GLUED_ANSWER: Final = re.compile(r"(S|OK|发现|线索|已排查|排查)([0-9]{6})(?![0-9])", re.IGNORECASE)
_REPORT_CODE: Final = re.compile(r"[Rr][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{6}")

_KIND_BY_KEYWORD: Final[dict[str, str]] = {
    **dict.fromkeys(("R", "BG", "报告", "举报", "1"), "report"),
    **dict.fromkeys(("S", "发现", "线索", "2"), "sighting"),
    **dict.fromkeys(("OK", "已排查", "排查", "3"), "swept"),
    **dict.fromkeys(("Q", "查询", "4"), "status"),
    **dict.fromkeys(("H", "HELP", "?", "？", "帮助", "0"), "help"),
    **dict.fromkeys(("TD", "退订", "STOP"), "unsubscribe"),
}

_CATEGORY_KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "CHILD": ("拐卖儿童", "拐儿童", "儿童", "偷抢儿童"),
    "WOMAN": ("拐卖妇女", "妇女", "买卖婚姻"),
    "ORIGIN": ("来历不明", "来历不明儿童"),
    "LABOUR": ("强迫劳动", "强迫乞讨", "乞讨", "童工"),
    "ADOPT": ("非法收养", "非法送养", "买卖婴儿"),
    "BIRTH": ("可疑分娩", "冒名分娩", "代孕"),
    "ABUSE": ("性侵", "性侵未成年人"),
    "ONLINE": ("网络", "网络诱骗", "招聘诱骗"),
    "OTHER": ("其他",),
}
_CATEGORY_BY_KEYWORD: Final[dict[str, str]] = {
    **{str(digit): code for digit, code in enumerate(CATEGORIES, start=1)},
    **{code: code for code in CATEGORIES},
    **{word: code for code, words in _CATEGORY_KEYWORDS.items() for word in words},
}
_DIGIT_CATEGORIES: Final = frozenset(str(digit) for digit in range(1, 10))
# Longest keyword first, so 来历不明儿童 is read as ORIGIN rather than 儿童 CHILD.
_SUGGEST: Final = re.compile(
    "|".join(
        sorted(
            (re.escape(word) for words in _CATEGORY_KEYWORDS.values() for word in words),
            key=len,
            reverse=True,
        )
    )
)


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What an SMS says, per the grammar; `errors` lists what the sender should fix."""

    kind: str
    category: str | None = None
    grid_code: str | None = None
    alert_code: str | None = None
    report_code: str | None = None
    details: str = ""
    errors: tuple[str, ...] = ()


_EMPTY_HELP: Final = ParsedMessage(kind="help")


def is_report_code(s: str) -> bool:
    """True when `s` is `R` + 6 Crockford base32 characters, in either case."""
    return _REPORT_CODE.fullmatch(s) is not None


def parse(text: str) -> ParsedMessage:
    """Read one SMS per the grammar; never raises, never drops the sender's text."""
    try:
        return _parse(text)
    except Exception:
        # A bug here must not lose a report: hand the text to a person instead.
        # The tests assert PARSER_ERROR never shows up for any input.
        raw = text if isinstance(text, str) else repr(text)
        return ParsedMessage(
            kind="free_text", details=raw[:MAX_DETAILS].strip(), errors=(PARSER_ERROR,)
        )


def _key(token: str) -> str:
    # Only ASCII letters fold: str.upper() would turn a dotless ı into I.
    return token.upper() if token.isascii() else token


def _grid_code(body: str) -> str | None:
    if _GRID_BODY.fullmatch(body) is None:
        return None
    digits = body.translate(_DROP_HYPHENS)
    return digits if 9 <= len(digits) <= 15 else None


def _location(token: str, bare_allowed: bool) -> tuple[str | None, bool]:
    """(grid code, malformed) for the token in the location slot."""
    prefix = 2 if token.startswith("网格") else 1 if token[0] in "@Gg" else 0
    body = token[prefix:]
    # After G or 网格 only a digit or hyphen makes a location: 网格员 is a person, Go a word.
    if prefix and (token[0] == "@" or body[:1] in _GRID_BODY_START):
        code = _grid_code(body)
        return code, code is None
    if bare_allowed:
        # A bare number of the wrong length is a house number or the like, not a typo.
        return _grid_code(token), False
    return None, False


def _find_grid(text: str) -> str | None:
    # The location slot was empty: take a well-formed grid token from the text,
    # leaving the text as it is.
    for match in _GRID_ANYWHERE.finditer(text):
        code = _grid_code(match.group(1))
        if code is not None:
            return code
    return None


def _suggest(text: str) -> str | None:
    best: str | None = None
    best_len = 0
    other = False
    for match in _SUGGEST.finditer(text):
        code = _CATEGORY_BY_KEYWORD[match.group()]
        if code == "OTHER":
            other = True  # 其他 is also an everyday word: the weakest hint
        elif match.end() - match.start() > best_len:
            best, best_len = code, match.end() - match.start()
    if best is None and other:
        return "OTHER"
    return best


def _details(text: str, pos: int, truncated: bool, errors: list[str]) -> str:
    token = _TOKEN.search(text, pos)
    if token is None:
        return ""
    details = text[token.start() :]
    if truncated or len(details) > MAX_DETAILS:
        details = details[:MAX_DETAILS].rstrip()
        errors.append(DETAILS_TRUNCATED)
    return details


def _parse(text: str) -> ParsedMessage:
    truncated = False
    if len(text) > _MAX_INPUT:
        truncated = not text[_MAX_INPUT:].isspace()  # trailing blanks are no loss
        text = text[:_MAX_INPUT]
    # ASCII is already NFKC; skipping the call is most of the speed on Latin input.
    s = (text if text.isascii() else unicodedata.normalize("NFKC", text)).strip()
    first = _TOKEN.search(s)
    if first is None:
        return _EMPTY_HELP
    errors: list[str] = []
    kind = _KIND_BY_KEYWORD.get(_key(first.group()))
    glued = None if kind is not None else _GLUED_ANSWER.match(s, first.start())
    if glued is not None:
        kind = _KIND_BY_KEYWORD.get(_key(glued.group(1)))

    if kind is None:
        details = _details(s, first.start(), truncated, errors)
        return ParsedMessage(
            kind="free_text",
            category=_suggest(details),
            grid_code=_find_grid(details),
            details=details,
            errors=tuple(errors),
        )

    pos = first.end()
    arg = _TOKEN.search(s, pos)

    if kind == "report":
        category = _CATEGORY_BY_KEYWORD.get(_key(arg.group())) if arg else None
        grid: str | None = None
        if arg is None or category is None:
            category = UNCLASSIFIED
            errors.append(UNKNOWN_CATEGORY)  # and the whole rest stays as details
        else:
            pos = arg.end()
            grid, pos = _take_location(
                s, pos, first.group() == "1" and arg.group() in _DIGIT_CATEGORIES, errors
            )
        details = _details(s, pos, truncated, errors)
        return ParsedMessage(
            kind=kind,
            category=category,
            grid_code=grid or _find_grid(details),
            details=details,
            errors=tuple(errors),
        )

    if kind in ("sighting", "swept"):
        alert: str | None = None
        grid = None
        if glued is not None:
            alert = glued.group(2)
            grid, pos = _take_location(s, glued.end(), False, errors)
        elif arg is not None and _ALERT_CODE.fullmatch(arg.group()):
            alert = arg.group()
            grid, pos = _take_location(s, arg.end(), False, errors)
        else:
            errors.append(MISSING_CODE)
        details = _details(s, pos, truncated, errors)
        return ParsedMessage(
            kind=kind,
            grid_code=grid or _find_grid(details),
            alert_code=alert,
            details=details,
            errors=tuple(errors),
        )

    report_code: str | None = None
    if kind == "status":
        if arg is not None and _REPORT_CODE.fullmatch(arg.group()):
            report_code = arg.group().upper()
            pos = arg.end()
        else:
            errors.append(MISSING_CODE)
    details = _details(s, pos, truncated, errors)
    return ParsedMessage(kind=kind, report_code=report_code, details=details, errors=tuple(errors))


def _take_location(
    text: str, pos: int, bare_allowed: bool, errors: list[str]
) -> tuple[str | None, int]:
    """(grid code, position after it) for the optional location at `pos`."""
    token = _TOKEN.search(text, pos)
    if token is None:
        return None, pos
    code, malformed = _location(token.group(), bare_allowed)
    if code is not None:
        return code, token.end()
    if malformed:
        errors.append(BAD_GRID_CODE)  # the token stays in the details for a person
    return None, pos
