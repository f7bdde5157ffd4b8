"""The offline gazetteer over cpca's real division list, and place-name lookup."""

from __future__ import annotations

import subprocess
import sys

import pytest

from geo.distance import haversine_m
from geo.gazetteer import (
    Division,
    Gazetteer,
    Place,
    counties,
    division,
    level_of,
    load_divisions,
    parent_names,
    short_name,
)


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer()


def test_beijing_dongcheng_is_a_real_county_in_beijing() -> None:
    d = division("110101000000")
    assert d is not None
    assert (d.adcode, d.name, d.level) == ("110101000000", "东城区", "county")
    # Centre within a few km of Tiananmen (WGS-84 39.9087, 116.3975).
    assert haversine_m(d.lat, d.lon, 39.9087, 116.3975) < 5_000


def test_centres_are_converted_from_gcj02_to_wgs84() -> None:
    # cpca ships AMap's GCJ-02 centre for Beijing: 39.904211, 116.407394.
    d = division("110000000000")
    assert d is not None
    assert 300 < haversine_m(d.lat, d.lon, 39.904211, 116.407394) < 800


@pytest.mark.parametrize(
    ("adcode", "level"),
    [("330000000000", "province"), ("330100000000", "city"), ("330106000000", "county")],
)
def test_level_comes_from_the_adcode(adcode: str, level: str) -> None:
    assert level_of(adcode) == level
    d = division(adcode)
    assert d is not None
    assert d.level == level


def test_short_adcodes_are_padded_and_unknown_ones_are_none() -> None:
    assert division("110101") == division("110101000000")
    hangzhou = division("330100")
    assert hangzhou is not None
    assert hangzhou.name == "杭州市"
    assert division("999999") is None
    assert division("not-a-code") is None


def test_parent_names_give_province_then_city() -> None:
    assert parent_names("330106000000") == ("浙江省", "杭州市")
    assert parent_names("330106") == ("浙江省", "杭州市")
    # Beijing's districts sit under a placeholder "市辖区" row, which is no place.
    assert parent_names("110101000000") == ("北京市",)
    assert parent_names("330100000000") == ("浙江省",)
    assert parent_names("330000000000") == ()
    assert parent_names("") == ()


def test_divisions_are_loaded_once_without_placeholders() -> None:
    divisions = load_divisions()
    assert divisions is load_divisions()
    assert len(divisions) > 3000
    assert all(isinstance(d, Division) for d in divisions)
    names = {d.name for d in divisions}
    assert "市辖区" not in names
    assert "省直辖县级行政区划" not in names
    assert [d.adcode for d in divisions] == sorted(d.adcode for d in divisions)
    assert all(len(d.adcode) == 12 and d.adcode.isdigit() for d in divisions)
    # 南沙群岛 reaches down to 11 N.
    assert all(3 <= d.lat <= 54 and 73 <= d.lon <= 136 for d in divisions)


def test_counties_are_county_level_only() -> None:
    cs = counties()
    assert len(cs) > 2500
    assert {d.level for d in cs} == {"county"}
    assert "110101000000" in {d.adcode for d in cs}


def test_loading_does_not_import_cpca_or_pandas() -> None:
    code = (
        "import sys, geo.gazetteer as g; g.load_divisions(); g.Gazetteer();"
        "print('cpca' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("full", "short"),
    [
        ("浙江省", "浙江"),
        ("杭州市", "杭州"),
        ("新疆维吾尔自治区", "新疆"),
        ("内蒙古自治区", "内蒙古"),
        ("湘西土家族苗族自治州", "湘西"),
        ("伊犁哈萨克自治州", "伊犁"),
        ("香港特别行政区", "香港"),
        ("喀什地区", "喀什"),
        ("东城区", None),
    ],
)
def test_short_names(full: str, short: str | None) -> None:
    assert short_name(full) == short


def test_lookup_finds_divisions_longest_first(gazetteer: Gazetteer) -> None:
    found = gazetteer.lookup("北京市东城区和平里小学门口有个男的带着两个小孩")
    assert [(p.name, p.adcode, p.kind) for p in found] == [
        ("北京市", "110000000000", "province"),
        ("东城区", "110101000000", "county"),
    ]
    assert found[1].precision_m == 10_000.0


def test_lookup_orders_by_length_then_position(gazetteer: Gazetteer) -> None:
    found = [(p.name, p.adcode) for p in gazetteer.lookup("浙江杭州市西湖区")]
    assert found == [
        ("杭州市", "330100000000"),
        # Both 西湖区 are kept; Hangzhou's first because 杭州市 is named too.
        ("西湖区", "330106000000"),
        ("西湖区", "360103000000"),
        ("浙江省", "330000000000"),  # found as 浙江, named officially
    ]


def test_a_parent_written_before_beats_the_reporters_county(gazetteer: Gazetteer) -> None:
    assert gazetteer.lookup("南昌市西湖区")[1].adcode == "360103000000"
    assert gazetteer.lookup("西湖区")[0].adcode == "330106000000"  # adcode order
    # A Hangzhou reporter who writes 南昌市西湖区 means Nanchang's.
    assert gazetteer.lookup("南昌市西湖区", prefer_county="330106")[1].adcode == "360103000000"
    # A city named elsewhere in the text counts after the reporter's county.
    assert gazetteer.lookup("西湖区，南昌市")[0].adcode == "360103000000"
    assert gazetteer.lookup("西湖区，南昌市", prefer_county="330106")[0].adcode == "330106000000"


def test_lookup_knows_short_city_names(gazetteer: Gazetteer) -> None:
    found = gazetteer.lookup("在杭州火车站看到一个哭闹的孩子")
    assert [(p.name, p.adcode) for p in found] == [("杭州市", "330100000000")]


def test_a_name_inside_a_longer_one_is_not_reported(gazetteer: Gazetteer) -> None:
    # 朝阳 (short for 朝阳市, Liaoning) must not come out of 朝阳区.
    adcodes = {p.adcode for p in gazetteer.lookup("朝阳区三里屯")}
    assert "211300000000" not in adcodes
    assert "110105000000" in adcodes


def test_street_names_that_look_like_cities_are_ignored(gazetteer: Gazetteer) -> None:
    assert gazetteer.lookup("中山路和日照街路口") == []


def test_whitespace_inside_names_still_matches(gazetteer: Gazetteer) -> None:
    assert [p.adcode for p in gazetteer.lookup("东 城\n区")] == ["110101000000"]


def test_nothing_in_empty_text(gazetteer: Gazetteer) -> None:
    assert gazetteer.lookup("") == []
    assert gazetteer.lookup("看到一个小孩") == []


def test_ambiguous_county_names_prefer_the_given_county(gazetteer: Gazetteer) -> None:
    plain = [p.adcode for p in gazetteer.lookup("鼓楼区")]
    assert plain == sorted(plain)
    assert len(plain) >= 4
    preferred = [p.adcode for p in gazetteer.lookup("鼓楼区", prefer_county="350102")]
    assert preferred[0] == "350102000000"  # 福州 鼓楼区
    assert sorted(preferred) == sorted(plain)  # all candidates kept


def test_ambiguous_village_names_prefer_county_then_city_then_province() -> None:
    g = Gazetteer()
    g.add("红星村", 30.10, 120.10, "330106001001", "village")  # Hangzhou 西湖区
    g.add("红星村", 30.20, 120.20, "330110001001", "village")  # Hangzhou 余杭区
    g.add("红星村", 39.90, 116.40, "110101001001", "village")  # Beijing 东城区
    g.add("红星村", 28.00, 120.60, "330302001001", "village")  # Wenzhou

    def order(prefer: str | None) -> list[str]:
        return [p.adcode for p in g.lookup("红星村村口", prefer_county=prefer)]

    assert order("110101") == [
        "110101001001", "330106001001", "330110001001", "330302001001"
    ]
    assert order("330110")[0] == "330110001001"
    # No village in 330108 (滨江区): same city (杭州) comes before Wenzhou and Beijing.
    assert order("330108")[:2] == ["330106001001", "330110001001"]
    assert order("330108")[2] == "330302001001"  # same province next
    assert order(None) == sorted(order(None))


def test_added_places_are_longer_than_divisions_and_win(gazetteer: Gazetteer) -> None:
    g = Gazetteer()
    g.add("东城区和平里社区", 39.95, 116.41, "110101002003", "community")
    found = g.lookup("北京市东城区和平里社区门口")
    assert found[0] == Place("东城区和平里社区", 39.95, 116.41, "110101002003", "community", 500.0)
    assert "110101000000" not in {p.adcode for p in found}  # 东城区 is inside the longer name


def test_add_is_idempotent_and_validates() -> None:
    g = Gazetteer(divisions=[])
    first = g.add("红星村", 30.1, 120.1, "330106001001", "village")
    assert g.add("红星村", 30.1, 120.1, "330106001001", "village") is first
    assert len(g) == 1
    assert first.precision_m == 1_000.0
    group = g.add("红星二组", 30.1, 120.1, "330106001002", "group", precision_m=250)
    assert group.precision_m == 250
    with pytest.raises(ValueError, match="too short"):
        g.add("村", 30.1, 120.1, "330106001001", "village")
    with pytest.raises(ValueError, match="bad coordinates"):
        g.add("红旗村", float("nan"), 120.1, "330106001003", "village")


def test_gazetteer_can_be_built_without_short_names() -> None:
    g = Gazetteer(short_names=False)
    assert g.lookup("杭州") == []
    assert [p.adcode for p in g.lookup("杭州市")] == ["330100000000"]
