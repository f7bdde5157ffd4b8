"""Linking reports: identifiers in Chinese text, keyed hashes, neighbouring cells, and
the rule for "one incident" (docs/linking.md) as a table of pairs."""

from __future__ import annotations

import datetime as dt
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid.linking import (
    ASSUMED_PRECISION_M,
    BASE_RADIUS_M,
    MAX_LINK_M,
    LinkCandidate,
    category_group,
    identifiers,
    keyed,
    link_distance_m,
    link_keys,
    neighbours,
    normalise_phone,
    normalise_plate,
    same_incident,
)
from sms.grammar import CATEGORIES

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("联系电话138 0013 8000", ("+8613800138000",)),
        ("+86-139-1234-5678", ("+8613912345678",)),
        ("电话：+86 139 1234 5678，请速回", ("+8613912345678",)),
        ("0086 186-1234-5678", ("+8618612345678",)),
        ("8613800138000", ("+8613800138000",)),
        ("手机１３８００１３８０００", ("+8613800138000",)),  # full-width digits
        ("打13800138000或13912345678，13800138000", ("+8613800138000", "+8613912345678")),
        ("男孩约8岁，穿红衣", ()),
        # Not mobile numbers: second digit 2, ten digits, inside a longer number.
        ("12800138000", ()),
        ("1380013800", ()),
        ("身份证110101199003071234", ()),
        ("订单号213800138000", ()),
        ("流水号138001380001", ()),
    ],
)
def test_normalise_phone(text: str, expected: tuple[str, ...]) -> None:
    assert normalise_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("云C·12345", ("云C12345",)),
        ("京A12345", ("京A12345",)),
        ("粤B D12345", ("粤BD12345",)),  # new energy, small car
        ("粤B12345D", ("粤B12345D",)),  # new energy, large vehicle
        ("云Ｃ１２３４５", ("云C12345",)),  # full width
        ("一辆白色面包车，车牌沪c•a8k21，往南开了", ("沪CA8K21",)),
        ("川A-12345和川A12345", ("川A12345",)),
        ("云A1234警", ("云A1234警",)),
        ("苏E1234学", ("苏E1234学",)),
        ("鲁B1234挂", ("鲁B1234挂",)),
        ("京A1234", ()),  # too short
        ("京A12345678", ()),  # too long: a number, not a plate
        ("京A123456", ()),  # six characters but not a new-energy pattern
        ("北A12345", ()),  # not a province abbreviation
    ],
)
def test_normalise_plate(text: str, expected: tuple[str, ...]) -> None:
    assert normalise_plate(text) == expected


def test_identifiers_are_typed() -> None:
    text = "在车站看到一辆云C·12345面包车，司机电话+86-139-1234-5678，另一个号码138 0013 8000"
    assert identifiers(text) == {
        "plate:云C12345",
        "phone:+8613912345678",
        "phone:+8613800138000",
    }


def test_same_identifier_written_differently_gives_the_same_key() -> None:
    assert link_keys("电话 139-1234-5678", KEY) == link_keys("+8613912345678", KEY)
    assert link_keys("云C·12345", KEY) == link_keys("车牌云Ｃ１２３４５", KEY)
    assert len(link_keys("云C·12345 13912345678", KEY)) == 2


def test_keyed_hashes_depend_on_the_key() -> None:
    ident = "phone:+8613912345678"
    a = keyed(ident, KEY)
    assert a == keyed(ident, KEY)
    assert a != keyed(ident, OTHER_KEY)
    assert a != keyed("phone:+8613912345679", KEY)
    assert len(a) == 64
    int(a, 16)
    # The clear value does not appear in what is stored.
    assert "13912345678" not in a


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        keyed("phone:+8613912345678", b"short")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_identifiers_never_raise(text: str) -> None:
    found = identifiers(text)
    assert all(i.startswith(("phone:+861", "plate:")) for i in found)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789 -+86１３云京粤CABD·•", max_size=40))
def test_identifiers_never_raise_on_near_misses(text: str) -> None:
    for ident in identifiers(text):
        if ident.startswith("phone:"):
            assert len(ident) == len("phone:+86") + 11


def square(x: float, y: float, side: float = 1.0) -> list[tuple[float, float]]:
    return [(x, y), (x + side, y), (x + side, y + side), (x, y + side)]


def grid(n: int, side: float = 0.01) -> dict[str, list[tuple[float, float]]]:
    return {
        f"{i}-{j}": square(100 + i * side, 30 + j * side, side) for i in range(n) for j in range(n)
    }


def test_neighbours_on_a_three_by_three_grid() -> None:
    nb = neighbours(grid(3))
    assert nb["1-1"] == {"0-0", "0-1", "0-2", "1-0", "1-2", "2-0", "2-1", "2-2"}
    assert nb["0-0"] == {"0-1", "1-0", "1-1"}  # corners touch too
    assert nb["2-1"] == {"1-0", "1-1", "1-2", "2-0", "2-2"}
    for code, others in nb.items():
        assert code not in others
        assert all(code in nb[o] for o in others)


def test_neighbours_within_the_tolerance_only() -> None:
    cells = {
        "A": square(0.0, 0.0),
        "B": square(1.0 + 5e-8, 0.0),  # a digitising sliver away: neighbour
        "C": square(3.0, 0.0),  # a real gap: not
        "D": square(0.5, 0.5),  # overlaps A (bad data, still next to it)
        "E": [(10.0, 10.0), (11.0, 10.0), (11.0, 11.0), (10.0, 11.0), (10.0, 10.0)],  # closed
    }
    nb = neighbours(cells)
    assert nb["A"] == {"B", "D"}
    assert nb["B"] == {"A", "D"}
    assert nb["C"] == frozenset()
    assert nb["E"] == frozenset()
    assert neighbours(cells, tolerance_deg=0.0)["A"] == {"D"}


def test_neighbours_of_nothing() -> None:
    assert neighbours({}) == {}


def test_neighbours_bad_rings() -> None:
    with pytest.raises(ValueError, match="at least 3 points"):
        neighbours({"A": [(0.0, 0.0), (1.0, 1.0)]})
    with pytest.raises(ValueError, match="tolerance"):
        neighbours(grid(2), tolerance_deg=-1.0)


def test_neighbours_for_many_cells_is_fast() -> None:
    cells = grid(100)  # 10,000 cells; 100,000 take ~1.5 s on the target
    start = time.perf_counter()
    nb = neighbours(cells)
    elapsed = time.perf_counter() - start
    assert len(nb) == 10_000
    assert len(nb["50-50"]) == 8
    assert elapsed < 2.0


T0 = dt.datetime(2025, 3, 1, 8, 0, 0)
LAT0, LON0 = 25.0, 101.0  # the sample county's latitude
M_LAT = 1 / 111_195.0  # degrees per metre north
M_LON = 1 / (111_195.0 * math.cos(math.radians(LAT0)))  # degrees per metre east
GPS = 10.0  # a good phone fix, metres


def cand(
    rid: str,
    category: str = "CHILD",
    *,
    north: float | None = 0.0,
    east: float = 0.0,
    precision: float | None = GPS,
    cell: str | None = "A",
    minutes: float = 0,
    keys: frozenset[str] = frozenset(),
    reporter: str | None = None,
) -> LinkCandidate:
    """A report `north`/`east` metres from a fixed point (north=None: no point at all)."""
    lat = None if north is None else LAT0 + north * M_LAT
    lon = None if north is None else LON0 + east * M_LON
    return LinkCandidate(rid, category, cell, T0 + dt.timedelta(minutes=minutes), keys,
                         lat=lat, lon=lon, precision_m=None if north is None else precision,
                         reporter=reporter or f"reporter-{rid}")


LINK = [
    # Two phone fixes at one place, half an hour apart.
    ("same spot", cand("1"), cand("2", north=40, minutes=30), "same_place"),
    # 200 m base + 10 + 10: 215 m is one incident, across a cell border too.
    ("215 m apart, GPS", cand("1"), cand("2", east=215, cell="B"), "same_place"),
    # Child abduction and a child of unknown origin: one group, two witnesses.
    ("same group", cand("1"), cand("2", "ORIGIN", north=100), "same_place"),
    ("woman and labour", cand("1", "WOMAN"), cand("2", "LABOUR", east=50), "same_place"),
    # Vaguer points may be further apart: 200 + 300 + 300.
    ("vague points 700 m", cand("1", precision=300), cand("2", east=700, precision=300),
     "same_place"),
    ("window is inclusive", cand("1"), cand("2", minutes=60), "same_place"),
    # Neither point says more than the cell: the same cell is all we can go on.
    ("both unplaced, same cell", cand("1", north=None), cand("2", north=None), "same_cell"),
    ("coarse and precise, same cell", cand("1", precision=800), cand("2", east=600),
     "same_cell"),
    # The same reporter following up on the same incident.
    ("same reporter, same category", cand("1", reporter="r"), cand("2", north=30, reporter="r"),
     "same_place"),
    # A shared number links across categories, places and any time.
    ("shared number", cand("1", keys=frozenset({"h1", "h2"})),
     cand("2", "LABOUR", east=50_000, cell="C", minutes=60 * 24 * 90, keys=frozenset({"h2"})),
     "same_identifier"),
    ("shared number, same reporter", cand("1", reporter="r", keys=frozenset({"h"})),
     cand("2", "OTHER", east=9000, reporter="r", keys=frozenset({"h"})), "same_identifier"),
]

DO_NOT_LINK = [
    # Issue 17: unrelated incidents 0.5-0.9 km apart were merged into one clue.
    ("500 m apart, GPS", cand("1"), cand("2", east=500, cell="B")),
    ("700 m apart, GPS, same cell", cand("1"), cand("2", north=700)),
    ("900 m apart, GPS", cand("1"), cand("2", north=600, east=670, cell="B")),
    ("just past 220 m, GPS", cand("1"), cand("2", east=221)),
    # However vague the points, never more than MAX_LINK_M.
    ("vague points 1.1 km", cand("1", precision=500), cand("2", east=1100, precision=500)),
    ("other group", cand("1"), cand("2", "LABOUR")),
    ("other group, routine", cand("1", "ONLINE"), cand("2", "OTHER")),
    ("outside the window", cand("1"), cand("2", minutes=61)),
    ("outside the window, before", cand("1"), cand("2", minutes=-61)),
    # The same reporter filing under another category tells of another incident.
    ("same reporter, other category", cand("1", reporter="r"),
     cand("2", "ORIGIN", north=30, reporter="r")),
    ("both unplaced, other cells", cand("1", north=None), cand("2", north=None, cell="B")),
    ("unplaced, no cell", cand("1", north=None, cell=None), cand("2", north=None, cell=None)),
    ("coarse and precise, other cells", cand("1", precision=800), cand("2", cell="B")),
    ("other numbers", cand("1", keys=frozenset({"h1"})),
     cand("2", east=5000, cell="C", keys=frozenset({"h2"}))),
    ("itself", cand("1"), cand("1")),
]


@pytest.mark.parametrize(("name", "a", "b", "reason"), LINK, ids=[row[0] for row in LINK])
def test_pairs_that_are_one_incident(name: str, a: LinkCandidate, b: LinkCandidate,
                                     reason: str) -> None:
    assert same_incident(a, b, 3600) == reason
    assert same_incident(b, a, 3600) == reason


@pytest.mark.parametrize(("name", "a", "b"), DO_NOT_LINK, ids=[row[0] for row in DO_NOT_LINK])
def test_pairs_that_are_two_incidents(name: str, a: LinkCandidate, b: LinkCandidate) -> None:
    assert same_incident(a, b, 3600) is None
    assert same_incident(b, a, 3600) is None


def test_link_distance_follows_both_precisions_up_to_a_cap() -> None:
    assert link_distance_m(cand("1"), cand("2")) == BASE_RADIUS_M + 2 * GPS
    assert link_distance_m(cand("1", precision=100), cand("2", precision=None)) == (
        BASE_RADIUS_M + 100 + ASSUMED_PRECISION_M)
    assert link_distance_m(cand("1", precision=450), cand("2", precision=450)) == MAX_LINK_M


def test_every_category_has_a_group() -> None:
    assert {category_group(c) for c in CATEGORIES} >= {"child", "exploitation"}
    assert category_group("CHILD") == category_group("ADOPT") != category_group("WOMAN")
    assert category_group("SOMETHING_NEW") == "SOMETHING_NEW"


def test_same_incident_identifiers_from_text() -> None:
    a = cand("1", keys=link_keys("司机电话139-1234-5678", KEY))
    b = cand("2", "WOMAN", east=30_000, cell="C", keys=link_keys("+86 13912345678 打过来", KEY))
    assert same_incident(a, b, 0) == "same_identifier"


def test_same_incident_rejects_a_negative_window() -> None:
    with pytest.raises(ValueError, match="window_s"):
        same_incident(cand("1"), cand("2"), -1)
