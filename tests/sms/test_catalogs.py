"""The SMS catalogs agree with the code and with each other (docs/sms-languages.md)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from sms import catalogs, replies
from sms.encoding import segments

DOC = Path(__file__).parents[2] / "docs" / "sms-languages.md"
HAN = re.compile("[\u4e00-\u9fff]")

# The longest value each placeholder can carry (names are cut by sms/replies.py).
LONGEST = {
    "code": "RZZZZZZ", "new_code": "RZZZZZZ", "alert": "402913", "time": "23:59",
    "station": "某" * replies.MAX_STATION, "cell": "某" * replies.MAX_CELL,
    "unit": "某" * replies.MAX_UNIT, "level": "99", "minutes": "99999",
}
# The free text an alert carries is cut to fit; its template must leave at least this
# much room (the tracker's example has 8 characters of description and 4 of place).
ROOM = {"description": "某" * 6, "place": "某" * 6, "update": "某" * 12}
MOST_SEGMENTS = {"help": 3, "welcome": 2}


def _ids(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, str(m.id)) for m in catalog if m.id}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.fixture(scope="module")
def code_ids() -> set[tuple[str | None, str]]:
    return _ids(catalogs.extract())


def test_the_template_holds_every_text_of_the_code_and_no_other(code_ids):
    with catalogs.TEMPLATE.open("rb") as template:
        assert _ids(read_po(template)) == code_ids


def test_the_code_has_its_texts():
    # Extraction really finds the texts: a message from a table and one from a call.
    ids = {message for _, message in _ids(catalogs.extract())}
    assert replies.PIN_PROBLEMS["pin_wrong"] in ids
    assert replies.IN_PROGRESS in ids
    assert any(message.startswith("【寻人{alert}】{description}") for message in ids)


@pytest.mark.parametrize("name", catalogs.CATALOGS)
def test_every_catalog_has_every_text_and_no_stale_one(name, code_ids):
    catalog = catalogs.read(name)
    assert _ids(catalog) == code_ids
    assert not catalog.obsolete


def test_the_chinese_catalog_is_the_code():
    for message in catalogs.read(catalogs.SOURCE):
        if message.id:
            assert message.string == message.id
            assert not message.fuzzy, message.id


def test_english_is_complete():
    for message in catalogs.read("en"):
        if message.id:
            assert message.string, message.id
            assert not message.fuzzy, message.id
            assert not HAN.search(str(message.string)), message.string


@pytest.mark.parametrize("name", catalogs.CATALOGS)
def test_translations_keep_every_placeholder(name):
    for message in catalogs.read(name):
        if message.id and message.string:
            assert _fields(str(message.string)) == _fields(str(message.id)), message.string


@pytest.mark.parametrize("name", catalogs.CATALOGS)
def test_every_message_of_every_catalog_fits_with_its_longest_values(name):
    translation = catalogs.translation(name)
    values = {
        **LONGEST, **ROOM,
        "category": max((translation.gettext(n) for n in replies.CATEGORY_NAMES.values()),
                        key=len),
        "state": max((translation.gettext(n)
                      for n in (*replies.STATUS_NAMES.values(), replies.IN_PROGRESS)), key=len),
    }
    for message in catalogs.read(name):
        if not message.id:
            continue
        msgid = str(message.id)
        text = (translation.pgettext(message.context, msgid) if message.context
                else translation.gettext(msgid)).format(**values)
        most = MOST_SEGMENTS.get(message.context or "", 1)
        assert segments(text) <= most, (name, len(text), text)


@pytest.mark.parametrize(("language", "catalog"), [
    ("zh", "zh_Hans"), ("en", "en"), ("ug", "ug"), ("bo", "bo"), ("ii", "ii"),
    ("EN", "en"), (" ug ", "ug"), ("zh_Hans", "zh_Hans"),
    (None, "zh_Hans"), ("", "zh_Hans"), ("fr", "zh_Hans"), ("uig", "zh_Hans"),
])
def test_a_roster_language_picks_its_catalog(language, catalog):
    assert catalogs.catalog_for(language) == catalog
    assert catalogs.path_of(catalog).is_file()


@pytest.mark.parametrize("name", ["ug", "bo", "ii"])
def test_draft_catalogs_say_they_await_a_native_speaker(name):
    assert catalogs.AWAITING_REVIEW in catalogs.read(name).header_comment


@pytest.mark.parametrize("name", catalogs.CATALOGS)
def test_the_doc_says_which_catalogs_await_review(name):
    draft = catalogs.AWAITING_REVIEW in catalogs.read(name).header_comment
    row = re.compile(rf"^\| `[a-z]+` \| `{name}` \|")  # | roster code | catalog | …
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if row.match(line)]
    assert len(rows) == 1, name
    assert ("awaiting review" in rows[0]) == draft, rows[0]


@pytest.fixture
def locale_dir(tmp_path, monkeypatch):
    """A copy of the catalogs to spoil, used instead of the real ones."""
    for name in catalogs.CATALOGS:
        target = tmp_path / name / "LC_MESSAGES"
        target.mkdir(parents=True)
        (target / "messages.po").write_bytes(catalogs.path_of(name).read_bytes())
    for name in catalogs.CONSOLE_CATALOGS:  # the police console's domain, beside
        console = catalogs.path_of(name, catalogs.CONSOLE)
        (tmp_path / name / "LC_MESSAGES" / console.name).write_bytes(console.read_bytes())
    (tmp_path / catalogs.TEMPLATE.name).write_bytes(catalogs.TEMPLATE.read_bytes())
    console_template = catalogs.template_of(catalogs.CONSOLE)
    (tmp_path / console_template.name).write_bytes(console_template.read_bytes())
    monkeypatch.setattr(catalogs, "LOCALE_DIR", tmp_path)
    monkeypatch.setattr(catalogs, "TEMPLATE", tmp_path / catalogs.TEMPLATE.name)
    catalogs._compiled.cache_clear()
    yield tmp_path
    catalogs._compiled.cache_clear()


def test_a_missing_or_fuzzy_text_falls_back_to_chinese(locale_dir):
    ug = catalogs.read("ug")
    unrouted = "已收到举报{code}，正在转交派出所。"
    assert ug[unrouted].string  # translated, until removed below
    del ug[unrouted]
    ug[replies.PIN_PROBLEMS["pin_wrong"]].flags.add("fuzzy")  # a reviewer withdrew it
    with catalogs.path_of("ug").open("wb") as out:
        write_po(out, ug)

    assert replies.receipt("R7K3Q9M", None, lang="ug") == "已收到举报R7K3Q9M，正在转交派出所。"
    assert replies.pin_problem("pin_wrong", lang="ug") == replies.PIN_PROBLEMS["pin_wrong"]
    # The rest of the catalog is still Uyghur.
    assert not HAN.search(replies.pin_problem("pin_missing", lang="ug"))


def test_the_files_are_as_make_messages_leaves_them(locale_dir):
    assert catalogs.update() == []


def test_make_messages_gives_a_new_text_to_every_catalog_and_marks_a_changed_one(locale_dir):
    ug = catalogs.read("ug")
    ug.delete(replies.PIN_PROBLEMS["pin_wrong"])  # as if the code had just added it
    missing = replies.PIN_PROBLEMS["pin_missing"]
    translated = ug[missing].string
    ug.delete(missing)  # as if the code had just reworded it
    ug.add(missing.replace("本条", "此条"), translated)
    with catalogs.path_of("ug").open("wb") as out:
        write_po(out, ug)

    assert catalogs.path_of("ug") in catalogs.update()
    ug = catalogs.read("ug")
    new = ug[replies.PIN_PROBLEMS["pin_wrong"]]
    assert new.fuzzy or not new.string  # to translate (at most a guess); Chinese meanwhile
    assert ug[replies.PIN_PROBLEMS["pin_missing"]].fuzzy  # the old translation, to review
    assert catalogs.update() == []
    catalogs._compiled.cache_clear()
    assert replies.pin_problem("pin_wrong", lang="ug") == replies.PIN_PROBLEMS["pin_wrong"]
    assert replies.pin_problem("pin_missing", lang="ug") == replies.PIN_PROBLEMS["pin_missing"]


def test_the_console_speaks_chinese_and_english_completely():
    template = _ids(catalogs.extract(catalogs.CONSOLE))
    assert template  # the console's pages have texts to translate
    for name in catalogs.CONSOLE_CATALOGS:
        catalog = catalogs.read(name, catalogs.CONSOLE)
        assert _ids(catalog) == template, name
        for message in catalog:
            if message.id:
                assert message.string, (name, message.id)
                assert not message.fuzzy, (name, message.id)
                assert _fields(str(message.string)) == _fields(str(message.id)), message.id
    chinese = catalogs.read("zh_Hans", catalogs.CONSOLE)
    assert all(m.string == m.id for m in chinese if m.id)
    english = catalogs.translation("en", catalogs.CONSOLE)
    assert english.gettext("本所线索") == "Station inbox"
    assert not HAN.search(english.gettext("没有找到这条线索。"))
