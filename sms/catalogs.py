"""The gettext catalogs every SMS text comes from, one per language (docs/sms-languages.md).

The `.po` sources under `sms/locale/` are the only copy: each is compiled in
memory by Babel the first time a message in its language is needed, so there
is no build step and no `.mo` file that could fall behind its `.po`.
Chinese is the source language: the msgids in `sms/replies.py` are the
Chinese texts, and any message a catalog lacks (or marks fuzzy) falls back to
Chinese.

`python -m sms.catalogs` (`make messages`) extracts the msgids into
`sms/locale/messages.pot` and brings every catalog up to date with it.

The police console's pages (gateway/console/) have their own domain, `console`,
beside the SMS texts' `messages`: the same files, the same extraction, but no
one-SMS rule, and Chinese and English only (`console.pot`, `*/LC_MESSAGES/console.po`).
"""

from __future__ import annotations

import copy
import gettext
import io
import re
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"
TEMPLATE: Final = LOCALE_DIR / f"{DOMAIN}.pot"
# The extraction mapping (which files hold msgids); `pybabel extract -F` reads it too.
MAPPING: Final = Path(__file__).parent.parent / "babel.cfg"
# N_ marks the texts kept in tables (sms/replies.py), translated where they are used.
KEYWORDS: Final = ("_", "gettext", "pgettext", "N_")
COMMENT_TAGS: Final = ("TRANSLATORS:",)
# The one header line extraction changes every run: not a reason to rewrite a file.
_CREATION_DATE: Final = re.compile(rb'^"POT-Creation-Date: [^"]*"\n', re.MULTILINE)

SOURCE: Final = "zh_Hans"
CATALOGS: Final = ("zh_Hans", "en", "ug", "bo", "ii")
# The police console's texts: a domain of their own, extracted from the files under
# CONSOLE_SOURCES (babel.cfg), in the languages the console offers.
CONSOLE: Final = "console"
CONSOLE_SOURCES: Final = "gateway/console/"
CONSOLE_CATALOGS: Final = ("zh_Hans", "en")
_DOMAIN_CATALOGS: Final[dict[str, tuple[str, ...]]] = {DOMAIN: CATALOGS,
                                                       CONSOLE: CONSOLE_CATALOGS}

# The `language` column of a roster (ROSTER_FORMAT.md) → catalog.
_ROSTER_LANGUAGES: Final[dict[str, str]] = {
    "zh": "zh_Hans", "zh_hans": "zh_Hans", "zh-hans": "zh_Hans",
    "en": "en", "ug": "ug", "bo": "bo", "ii": "ii",
}

# The header comment line that says a catalog's translation is a draft (ug, bo, ii).
AWAITING_REVIEW: Final = "Status: awaiting review by a native speaker."


def catalog_for(language: str | None) -> str:
    """The catalog for a person's language code (`zh`, `en`, `ug`, `bo`, `ii`); Chinese when
    the code is missing or unknown."""
    return _ROSTER_LANGUAGES.get((language or "").strip().lower(), SOURCE)


def path_of(catalog: str, domain: str = DOMAIN) -> Path:
    """Where a catalog's `.po` source is."""
    return LOCALE_DIR / catalog / "LC_MESSAGES" / f"{domain}.po"


def template_of(domain: str) -> Path:
    """Where a domain's template (`.pot`) is."""
    return LOCALE_DIR / f"{domain}.pot"


def read(catalog: str, domain: str = DOMAIN) -> Catalog:
    """A catalog's `.po` source, parsed."""
    from babel.messages.pofile import read_po

    with path_of(catalog, domain).open("rb") as source:
        return read_po(source, locale=catalog, domain=domain)


@cache
def _compiled(catalog: str, domain: str = DOMAIN) -> gettext.NullTranslations:
    from babel.messages.mofile import write_mo

    compiled = io.BytesIO()
    write_mo(compiled, read(catalog, domain))  # fuzzy entries are left out: they fall back
    compiled.seek(0)
    translations = gettext.GNUTranslations(compiled)
    if catalog != SOURCE:
        translations.add_fallback(_compiled(SOURCE, domain))
    return translations


def translation(language: str | None, domain: str = DOMAIN) -> gettext.NullTranslations:
    """The translations for a person's language code, falling back to Chinese."""
    return _compiled(catalog_for(language), domain)


def _domain_of(filename: str) -> str:
    return CONSOLE if filename.replace("\\", "/").startswith(CONSOLE_SOURCES) else DOMAIN


def extract(domain: str = DOMAIN) -> Catalog:
    """Every msgid of `domain` in the code, as `pybabel extract -F babel.cfg -k N_ -c
    TRANSLATORS:` finds them, without source locations (so moving code does not change
    the template)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with MAPPING.open(encoding="utf-8") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)  # type: ignore[no-untyped-call]
    header = ("# The SMS texts of SafeGrid (sms/replies.py), the template of every catalog."
              if domain == DOMAIN else
              "# The police console's texts (gateway/console/), the template of its catalogs.")
    template = Catalog(project="SafeGrid", domain=domain, fuzzy=False, msgid_bugs_address="",
                       header_comment=header + "\n# Made by `make messages`; "
                                               "docs/sms-languages.md.")
    keywords: dict[str, tuple[int | tuple[int, str], ...] | None] = {
        "_": None, "gettext": None, "N_": None, "pgettext": ((1, "c"), 2)}
    for filename, _line, message, comments, context in extract_from_dir(
            MAPPING.parent, method_map, options_map, keywords=keywords,
            comment_tags=COMMENT_TAGS, strip_comment_tags=True):
        if _domain_of(filename) == domain:
            template.add(message, None, auto_comments=comments, context=context)
    return template


def update() -> list[Path]:
    """Write the template and bring every catalog up to date with it; the Chinese catalog's
    texts are its msgids. Returns the files that changed."""
    written: list[Path] = []
    for domain, names in _DOMAIN_CATALOGS.items():
        written += _update(domain, names)
    return written


def _update(domain: str, names: tuple[str, ...]) -> list[Path]:
    template = extract(domain)
    written = [template_of(domain)] if _write(template_of(domain), template) else []
    for name in names:
        if not path_of(name, domain).exists():  # a new domain: its catalogs start empty
            from babel.messages.catalog import Catalog

            _write(path_of(name, domain), Catalog(locale=name, domain=domain,
                                                  project="SafeGrid", fuzzy=False))
        catalog = read(name, domain)
        # (A copy: update() shares the template's messages, and the Chinese fill below
        # must not leak into the other catalogs.) A changed msgid keeps its old
        # translation as a fuzzy guess for the translator; fuzzy entries are not sent.
        catalog.update(copy.deepcopy(template), no_fuzzy_matching=name == SOURCE)
        if name == SOURCE:
            for message in catalog:
                if message.id:
                    message.string = message.id
        # (No `#| msgid` lines: Babel reads them back as comments, so a second run would
        # rewrite them.)
        if _write(path_of(name, domain), catalog, ignore_obsolete=True):
            written.append(path_of(name, domain))
    return written


def _write(path: Path, catalog: Catalog, **options: bool) -> bool:
    """Write `catalog` unless only its POT-Creation-Date would change; True when written."""
    from babel.messages.pofile import write_po

    out = io.BytesIO()
    write_po(out, catalog, no_location=True, **options)
    new = out.getvalue()
    old = path.read_bytes() if path.exists() else b""
    if _CREATION_DATE.sub(b"", new) == _CREATION_DATE.sub(b"", old):
        return False
    path.write_bytes(new)
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m sms.catalogs`: extract and update (the `make messages` target)."""
    written = update()
    for path in written:
        print(f"wrote {path.relative_to(MAPPING.parent)}")
    if not written:
        print("the template and every catalog are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
