"""Places as people write them (issue 17): bare names, traditional script, short
names, shared names and everyday words, in a table of report texts in both scripts."""

from __future__ import annotations

import opencc
import pytest

from geo.distance import haversine_m
from geo.gazetteer import Gazetteer, division, load_divisions
from geo.geocoder import FLAG_AMBIGUOUS, Located, locate_text
from geo.placenames import EVERYDAY_WORDS, bare_name, contractions, to_simplified

PLACE = [  # (simplified, traditional, adcode of the place meant)
    ("云南威信县城车站有个女的一直哭", "雲南威信縣城車站有個女的一直哭", "530629"),
    ("在威信打工的老乡说村里来了个外地媳妇", "在威信打工的老鄉說村裡來了個外地媳婦", "530629"),
    ("昭通威信有人贩卖儿童", "昭通威信有人販賣兒童", "530629"),
    ("威信火车站有个小孩一直哭", "威信火車站有個小孩一直哭", "530629"),
    ("从镇雄来的面包车上有三个孩子", "從鎮雄來的麵包車上有三個孩子", "530627"),
    ("来自会泽的女子说被人骗来的", "來自會澤的女子說被人騙來的", "530326"),
    ("彝良县一个学生三天没来上学", "彝良縣一個學生三天沒來上學", "530628"),
    ("昆明市盘龙区汽车站有人带着三个孩子乞讨", "昆明市盤龍區汽車站有人帶著三個孩子乞討", "530103"),
    ("昆明盘龙有个女孩被锁在屋里", "昆明盤龍有個女孩被鎖在屋裡", "530103"),
    ("住在盘龙那边的人说听到孩子哭", "住在盤龍那邊的人說聽到孩子哭", "530103"),
    ("海南有人在网上招聘，骗去外地", "海南有人在網上招聘，騙去外地", "460000"),
    ("青海海南州有人买卖婚姻", "青海海南州有人買賣婚姻", "632500"),
    ("吉林有个孩子走失了", "吉林有個孩子走失了", "220000"),
    ("吉林市船营区有人收养来历不明的婴儿", "吉林市船營區有人收養來歷不明的嬰兒", "220204"),
    ("长春市朝阳区某小区有人收养来历不明的婴儿",
     "長春市朝陽區某小區有人收養來歷不明的嬰兒", "220104"),
    ("北京朝阳区三里屯看到一个哭闹的孩子", "北京朝陽區三里屯看到一個哭鬧的孩子", "110105"),
    ("福州鼓楼区医院里有个产妇登记的名字对不上",
     "福州鼓樓區醫院裡有個產婦登記的名字對不上", "350102"),
    ("石家庄市新华区有人贩卖妇女", "石家莊市新華區有人販賣婦女", "130105"),
    ("南昌市西湖区有个男的带着两个小孩", "南昌市西湖區有個男的帶著兩個小孩", "360103"),
    ("浙江杭州西湖区转塘有可疑车辆", "浙江杭州西湖區轉塘有可疑車輛", "330106"),
    ("贵州毕节大方县有个女的被卖到外地", "貴州畢節大方縣有個女的被賣到外地", "520521"),
    ("青海海东平安区有户人家买来一个媳妇", "青海海東平安區有戶人家買來一個媳婦", "630203"),
    ("云南富民县有人强迫孩子乞讨", "雲南富民縣有人強迫孩子乞討", "530124"),
    ("昆明安宁市有人收养来历不明的婴儿", "昆明安寧市有人收養來歷不明的嬰兒", "530181"),
    ("神农架有人带着小孩乞讨", "神農架有人帶著小孩乞討", "429021"),
    ("香格里拉古城有人拐卖妇女", "香格里拉古城有人拐賣婦女", "533401"),
    ("峨边县有个学生被亲戚带走了", "峨邊縣有個學生被親戚帶走了", "511132"),
    ("积石山县来的媳妇一直哭", "積石山縣來的媳婦一直哭", "622927"),
    ("在杭州火车站看到一个哭闹的孩子", "在杭州火車站看到一個哭鬧的孩子", "330100"),
    ("陕西乾县有个孩子被抱走", "陝西乾縣有個孩子被抱走", "610424"),
    ("上海浦东有人找人代孕", "上海浦東有人找人代孕", "310115"),
    # everyday words as districts, right after their own city only
    ("重庆江北机场有人带着三个孩子", "重慶江北機場有人帶著三個孩子", "500105"),
    ("南京鼓楼医院里有个产妇登记的名字对不上",
     "南京鼓樓醫院裡有個產婦登記的名字對不上", "320106"),
    ("毕节大方有个女的被卖到外地", "畢節大方有個女的被賣到外地", "520521"),
    ("海东平安有户人家买来一个媳妇", "海東平安有戶人家買來一個媳婦", "630203"),
    ("北京大兴有人找人代孕", "北京大興有人找人代孕", "110115"),
    ("四川南部山区有人买卖婚姻", "四川南部山區有人買賣婚姻", "510000"),  # not 南部县
    ("荆州公安局的民警来过了", "荊州公安局的民警來過了", "421000"),  # not 公安县
    ("济南市中心有人带着孩子乞讨", "濟南市中心有人帶著孩子乞討", "370100"),  # not 市中区
    ("贵州大方的亲戚说", "貴州大方的親戚說", "520000"),  # a province is not its city
    ("毕节的大方人说", "畢節的大方人說", "520500"),
    ("天津南开有个孩子被抱走", "天津南開有個孩子被抱走", "120104"),  # not 津南, inside 天津南开
    ("西安新城区有人贩卖妇女", "西安新城區有人販賣婦女", "610102"),  # not 安新县, inside 西安新城
    ("北京朝阳有人收养来历不明的婴儿", "北京朝陽有人收養來歷不明的嬰兒", "110105"),  # not 朝阳市
]
NOWHERE = [  # (simplified, traditional): everyday words, no place
    ("他说话很大方，出手也大方", "他說話很大方，出手也大方"),
    ("祝你平安，一路平安", "祝你平安，一路平安"),
    ("富民政策好，大家生活富裕", "富民政策好，大家生活富裕"),
    ("心里很安宁，晚上很安静", "心裡很安寧，晚上很安靜"),
    ("和平年代也要保护好孩子", "和平年代也要保護好孩子"),
    ("长安汽车停在路边好几天了", "長安汽車停在路邊好幾天了"),
    ("他在村里很有威信", "他在村裡很有威信"),
    ("在大方向上没有问题", "在大方向上沒有問題"),
    ("我在楼下花园里看到一个小孩在哭", "我在樓下花園裡看到一個小孩在哭"),
    ("新华书店门口有个小孩在乞讨", "新華書店門口有個小孩在乞討"),
    ("城关派出所的民警来过了", "城關派出所的民警來過了"),
    ("平安夜那天看到一个女孩被拉上车", "平安夜那天看到一個女孩被拉上車"),
    ("孩子在通道里哭，没人管", "孩子在通道里哭，沒人管"),
    ("到公安局报案的时候说不清楚", "到公安局報案的時候說不清楚"),
    ("在资源回收站打工的女孩没有身份证", "在資源回收站打工的女孩沒有身份證"),
    ("比如说有人给钱让她生孩子", "比如說有人給錢讓她生孩子"),
    ("去合作社买东西的时候看到的", "去合作社買東西的時候看到的"),
    ("永和豆浆店门口有人带着孩子乞讨", "永和豆漿店門口有人帶著孩子乞討"),
    ("白色面包车往南开了", "白色麵包車往南開了"),  # drove south, not 南开区
    ("我们村南关那边有人乞讨", "我們村南關那邊有人乞討"),  # a neighbourhood of many towns
]
AMBIGUOUS = [  # (simplified, traditional, the places it may mean)
    ("鼓楼区有人贩卖儿童", "鼓樓區有人販賣兒童", {"320106", "320302", "350102", "410204"}),
    ("朝阳区三里屯看到一个哭闹的孩子", "朝陽區三里屯看到一個哭鬧的孩子", {"110105", "220104"}),
    ("新华区有人收养来历不明的婴儿",
     "新華區有人收養來歷不明的嬰兒", {"130105", "130902", "410402"}),
    ("在江北区看到一个女的被拉上车", "在江北區看到一個女的被拉上車", {"330205", "500105"}),
    ("西湖区有可疑车辆", "西湖區有可疑車輛", {"330106", "360103"}),
    ("通州区火车站有个孩子一直哭", "通州區火車站有個孩子一直哭", {"110112", "320612"}),
    ("和平区医院里有个产妇登记的名字对不上",
     "和平區醫院裡有個產婦登記的名字對不上", {"120101", "210102"}),
    ("城关区有个女孩被锁在屋里", "城關區有個女孩被鎖在屋裡", {"540102", "620102"}),
]


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer()


def _locate(gazetteer: Gazetteer, text: str, prefer: str | None = None) -> Located | None:
    return locate_text(text, gazetteer=gazetteer, geocoder=None, prefer_county=prefer)


def _adcodes(located: Located) -> set[str]:
    # Candidates read "name(adcode)".
    return {label.rsplit("(", 1)[1].rstrip(")")[:6] for label in located.candidates}


def _both_scripts(rows: list[tuple[str, str, object]]) -> list[tuple[str, object]]:
    return [(text, rest) for simplified, traditional, rest in rows
            for text in (simplified, traditional)]


@pytest.mark.parametrize(("text", "adcode"), _both_scripts(PLACE))
def test_a_text_that_names_a_place_is_placed_there(gazetteer: Gazetteer, text: str,
                                                   adcode: object) -> None:
    place = division(str(adcode))
    assert place is not None
    located = _locate(gazetteer, text)
    assert located is not None
    assert (located.method, located.label) == ("gazetteer", place.name)
    assert (located.lat, located.lon) == (place.lat, place.lon)
    assert FLAG_AMBIGUOUS not in located.flags


@pytest.mark.parametrize("text", [t for row in NOWHERE for t in row])
def test_everyday_words_that_are_county_names_place_nothing(gazetteer: Gazetteer,
                                                             text: str) -> None:
    assert gazetteer.mentions(text) == []
    assert _locate(gazetteer, text) is None


@pytest.mark.parametrize(("text", "adcodes"), _both_scripts(AMBIGUOUS))
def test_a_name_shared_by_places_is_not_silently_picked(gazetteer: Gazetteer, text: str,
                                                        adcodes: object) -> None:
    located = _locate(gazetteer, text)
    assert located is not None
    assert FLAG_AMBIGUOUS in located.flags
    assert _adcodes(located) == adcodes
    # Too coarse to pick a cell: the point is only the first candidate's.
    assert located.precision_m > 50_000


def test_a_province_short_name_means_the_province_with_the_prefecture_as_candidate(
    gazetteer: Gazetteer,
) -> None:
    for text in ("海南有人在网上招聘", "吉林有个孩子走失了"):
        located = _locate(gazetteer, text)
        assert located is not None
        assert located.flags == ()
        assert located.precision_m == 200_000.0  # the province's, not the prefecture's
    hainan = _locate(gazetteer, "海南有人在网上招聘")
    assert hainan is not None
    assert hainan.candidates == ("海南省(460000000000)", "海南藏族自治州(632500000000)")


def test_the_reporters_county_settles_a_shared_name(gazetteer: Gazetteer) -> None:
    located = _locate(gazetteer, "鼓楼区有人贩卖儿童", prefer="350102")
    fuzhou = division("350102")
    assert located is not None
    assert fuzhou is not None
    assert (located.lat, located.lon, located.precision_m) == (fuzhou.lat, fuzhou.lon, 10_000.0)
    assert located.flags == ()
    assert located.candidates[0] == "鼓楼区(350102000000)"  # the others stay visible
    assert len(located.candidates) == 4


def test_a_parent_in_the_text_leaves_no_other_candidate(gazetteer: Gazetteer) -> None:
    located = _locate(gazetteer, "长春市朝阳区某小区", prefer="110105")
    assert located is not None
    assert located.label == "朝阳区"
    assert _adcodes(located) == set()  # only Changchun's: no candidates
    assert located.flags == ()


def test_an_ambiguous_name_loses_to_a_clear_coarser_one(gazetteer: Gazetteer) -> None:
    # 杭州 has no 鼓楼区: the city is sure, the district is not.
    located = _locate(gazetteer, "杭州鼓楼区")
    hangzhou = division("330100")
    assert located is not None
    assert hangzhou is not None
    assert (located.label, located.lat, located.lon) == ("杭州市", hangzhou.lat, hangzhou.lon)
    assert located.flags == ()


def test_ambiguous_precision_reaches_every_candidate(gazetteer: Gazetteer) -> None:
    located = _locate(gazetteer, "朝阳区")
    beijing, changchun = division("110105"), division("220104")
    assert located is not None
    assert beijing is not None
    assert changchun is not None
    apart = haversine_m(beijing.lat, beijing.lon, changchun.lat, changchun.lon)
    assert located.precision_m == pytest.approx(apart + 10_000.0)


def test_a_two_character_bare_name_needs_evidence(gazetteer: Gazetteer) -> None:
    assert gazetteer.mentions("威信") == []
    assert [m.written for m in gazetteer.mentions("在威信")] == ["威信"]
    assert [m.written for m in gazetteer.mentions("威信一带")] == ["威信"]
    assert [m.written for m in gazetteer.mentions("云南的威信")] == ["云南", "威信"]
    # A village or street of the name is somewhere else: no evidence for the county.
    assert gazetteer.mentions("威信村") == []
    assert gazetteer.mentions("威信路") == []
    # 朝阳 names 朝阳市; that is no evidence for 朝阳县 under it.
    assert [p.adcode[:6] for p in gazetteer.lookup("朝阳")] == ["211300"]


def test_every_division_is_found_by_its_name_in_traditional_script(
    gazetteer: Gazetteer,
) -> None:
    to_traditional = opencc.OpenCC("s2t.json")
    missed = [
        d.name for d in load_divisions()
        if d.name not in EVERYDAY_WORDS  # 城区, 郊区...: only after their city
        and d.adcode not in {p.adcode for p in gazetteer.lookup(to_traditional.convert(d.name))}
    ]
    assert missed == []


@pytest.mark.parametrize(
    ("text", "adcode"),
    [
        ("滑县有人贩卖儿童", "410526"),  # opens the text
        ("报警：滑县有人贩卖儿童", "410526"),  # after punctuation
        ("河南滑县城关镇有人贩卖儿童", "410526"),  # its province
        ("在和县看到一个哭闹的孩子", "340523"),  # a locative
        ("派出所和县公安局都知道了", None),  # 所和 | 县公安局
        ("这是省里的示范县", None),
        ("村子已经变成县城的一部分了", None),
        ("他以前任县长", None),
        ("阳泉市城区有人贩卖儿童", "140302"),  # 城区 after its city
        ("在老城区的巷子里", None),  # an old town anywhere
        ("在郊区的工厂里看到童工", None),
    ],
)
def test_a_two_character_full_name_needs_evidence_inside_a_sentence(
    gazetteer: Gazetteer, text: str, adcode: str | None
) -> None:
    located = _locate(gazetteer, text)
    if adcode is None:
        assert located is None
    else:
        place = division(adcode)
        assert located is not None
        assert place is not None
        assert (located.label, located.lat, located.lon) == (place.name, place.lat, place.lon)


def test_every_bare_name_of_three_characters_or_more_places_alone(gazetteer: Gazetteer) -> None:
    missed = []
    for d in load_divisions():
        bare = bare_name(d.name) if d.level == "county" else None
        if not bare or len(bare) < 3 or bare in EVERYDAY_WORDS:
            continue
        if d.adcode not in {p.adcode for p in gazetteer.lookup(bare)}:
            missed.append(d.name)
    assert missed == []


@pytest.mark.parametrize(
    ("name", "bare"),
    [
        ("威信县", "威信"),
        ("盘龙区", "盘龙"),
        ("安宁市", "安宁"),
        ("神农架林区", "神农架"),
        ("浦东新区", "浦东"),
        ("峨边彝族自治县", "峨边"),
        ("龙胜各族自治县", "龙胜"),
        ("东乡族自治县", "东乡"),
        ("鄂温克族自治旗", "鄂温克"),
        ("管城回族区", "管城"),
        ("城区", None),
    ],
)
def test_bare_names(name: str, bare: str | None) -> None:
    assert bare_name(name) == bare


def test_contractions_of_autonomous_units() -> None:
    assert contractions("海南藏族自治州", "city") == ("海南州",)
    assert contractions("峨边彝族自治县", "county") == ("峨边县",)
    assert contractions("鄂温克族自治旗", "county") == ("鄂温克旗",)
    assert contractions("杭州市", "city") == ()


def test_simplified_text_is_kept() -> None:
    assert to_simplified("昆明市盤龍區") == "昆明市盘龙区"
    assert to_simplified("昆明市盘龙区") == "昆明市盘龙区"
    assert to_simplified("") == ""
