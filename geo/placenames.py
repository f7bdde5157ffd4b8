"""Place names as people write them: short and bare forms, script, and everyday words.

A division is written in one of five forms, from surest to least sure:

- full: its official name (威信县, 盘龙区, 海南藏族自治州);
- contracted: an autonomous unit's name as people shorten it (海南州, 峨边县);
- province short: 浙江 for 浙江省, 新疆 for 新疆维吾尔自治区;
- city short: 杭州 for 杭州市, 海南 for 海南藏族自治州;
- bare county: a county-level name without its suffix (威信 for 威信县,
  盘龙 for 盘龙区, 神农架 for 神农架林区).

Bare county names are where everyday words live: of about 2,650 bare forms,
2,400 have two characters, and many are words (资源, 合作, 公安, 通道, 大方,
平安, 富民) or are written on every street (和平路, 新华街, 长安街). So:

- a word in `EVERYDAY_WORDS` places a report in its short or bare form only
  if it is in `AFTER_ITS_CITY` and written right after its own city (毕节大方,
  重庆江北); otherwise only its full name counts (大方县; "他说话很大方" and
  "祝你平安" place nothing);
- a bare name of three or more characters (神农架, 香格里拉) places alone;
- a bare name of two characters places only with evidence that a place is
  meant: its own province or city named in the same text (云南威信, 昭通市
  威信), a locative word just before it (在威信, 去威信, 来自威信: see
  `LOCATIVES`), or a place word just after it (威信火车站, 威信一带: see
  `PLACE_WORDS`). "他很有威信" places nothing;
- a full name of two characters (和县, 范县, 成县) needs the same evidence,
  or to start the text or follow punctuation (滑县有人…): in running text its
  first character too often ends the word before (派出所和县公安局, 示范县,
  变成县城). Full names that are words (城区, 郊区, 老城区, 市中区) count
  only right after their city, like `AFTER_ITS_CITY` words (阳泉市城区).

Village words (村, 镇, 乡, 街, 路) after a bare name are not evidence: 平安村
and 新华路 are in every county, and name a village or street, not the county.

Script: text and names are compared in simplified characters, converted with
OpenCC's t2s table (昆明市盤龍區 → 昆明市盘龙区); names are also indexed as
their traditional spelling reads back (浚县 is written 濬縣).

The everyday-word list was drawn up by reading, beside each two-character bare
name, its frequency and part of speech in jieba's dictionary, and then by hand:
directions and positions (南部, 城北, 江岸, 台前), common nouns, verbs and
adjectives (资源, 通道, 延长, 友好, 富裕), auspicious names given to streets
and villages everywhere (和平, 新华, 长安, 红旗, 向阳, 友谊), mountains, lakes
and rivers named far beyond the county (泰山, 天山, 西湖, 清水河), and phrases
the name hides in (楼下花园 → 下花园).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Final

import opencc

# Form ranks: lower is surer. A name written in a surer form wins a tie.
FULL: Final = 0
CONTRACTED: Final = 1  # 海南州, 峨边县: below a real full name of the same spelling
PROVINCE_SHORT: Final = 2
CITY_SHORT: Final = 3
BARE: Final = 4
# A bare name that is an everyday word (江北, 鼓楼, 大方): only right after its city.
BARE_WORD: Final = 5

# A two-character bare name needs evidence (module docstring); longer ones do not.
EVIDENCE_BELOW_CHARS: Final = 3

# Everyday words that people still write as a district's name right after its
# city (重庆江北, 南京鼓楼, 毕节大方, 西宁城北, 北京大兴): there, and only
# there, they count. Not words that also follow a city as words (荆州公安局,
# 云浮新兴产业, 济南市中心) nor directions after a province (四川南部).
# (A reviewed word list reads and diffs better as text than as quoted strings.)
AFTER_ITS_CITY: Final = frozenset(
    "大方 平安 富民 安宁 永和 和平 长安 新华 城关 江北 江南 江岸 南岸 鼓楼 钟楼 小店 "  # noqa: SIM905
    "城中 城北 城东 城西 河东 河西 东城 西城 新城 古城 山城 江城 白云 金山 青山 西湖 "
    "天山 泰山 梁山 龙门 凤凰 芙蓉 麒麟 红旗 向阳 碑林 天桥 南湖 东湖 海港 集美 大兴 "
    "长寿 金牛 青龙 大通 灯塔 平房 天涯 "
    # neighbourhoods of many towns (南关, 西市), and places better known as
    # something else (南开大学, 南沙群岛, 南山 and 东山 in every county)
    "南关 北关 西市 南岗 南开 南沙 南山 东山 "
    # full names that are words in their own right
    "城区 郊区 矿区 东区 西区 老城区 新城区 市中区".split()
)

# Words first, names second: never a place in their short or bare form, but
# for AFTER_ITS_CITY (added at the end).
EVERYDAY_WORDS: Final = frozenset(
    # named in issue 17, and short forms that were on the stoplist before
    "大方 平安 富民 安宁 永和 和平 长安 新华 城关 "  # noqa: SIM905 (a word list)
    "中山 来宾 日照 白银 安康 普洱 大同 阿里 开封 兴安 玉树 "
    # directions, positions, parts of a town
    "南部 东方 中方 城中 城北 城东 城西 城南 南城 北城 市中 市北 市南 路南 路北 "
    "南岸 江岸 台前 城厢 老城 古城 新城 山城 江城 上街 南郊 北郊 河口 港口 洞口 "
    "江北 江南 河东 河西 东城 西城 中原 平原 滨海 东海 南海 "
    # common nouns, verbs, adjectives
    "资源 合作 比如 解放 前进 公安 友好 通道 共和 安定 延长 新兴 运河 万年 东风 "
    "光泽 会同 工农 大名 富裕 清水 前锋 复兴 长子 清新 宏伟 平定 振兴 三元 互助 "
    "平和 大观 丰满 无为 小店 同心 平房 万安 灯塔 大兴 天涯 回民 安居 大通 新民 "
    "清流 爱民 和顺 开化 天元 兴业 大厂 盐池 大安 磐石 三水 小金 大田 政和 大化 "
    "永年 围场 集美 永定 乐业 大足 吉利 长寿 长乐 元宝 宝塔 兴隆 博爱 温泉 天桥 "
    "海港 白玉 新建 太平 三山 马尾 双桥 双塔 二七 二道 石门 新河 故城 "
    # names given to streets, villages, shops and brands everywhere
    "红旗 向阳 友谊 凤凰 芙蓉 莲花 牡丹 海棠 麒麟 九龙 七星 龙泉 桃源 名山 "
    "六合 永福 红星 金牛 石鼓 鼓楼 钟楼 碑林 青龙 卧龙 木兰 黄龙 石林 石龙 白云 "
    "金山 青山 西山 花山 东坡 江山 商城 甘泉 太和 宝丰 永丰 天长 牧野 "
    # mountains, lakes and rivers named well beyond the county
    "泰山 天山 恒山 梁山 龙门 西湖 东湖 南湖 北湖 太湖 月湖 沙河 赤水 黑水 江海 "
    "太白 光山 "
    # three characters and more
    "下花园 上甘岭 清水河 太子河 七里河 青山湖 东西湖 大渡口 沙河口 水磨沟".split()
) | AFTER_ITS_CITY

# Municipalities: their districts' city is the municipality itself (北京大兴).
MUNICIPALITIES: Final = frozenset({"11", "12", "31", "50"})

# Just before a two-character bare name: it is a place (在威信, 来自威信).
# Not 往: it mostly leads a direction (往南开了 is "drove south", not 南开区).
LOCATIVES: Final = ("来自", "位于", "在", "到", "去", "从", "回", "赴")
# Just after one: it is a place (威信火车站, 威信一带).
PLACE_WORDS: Final = (
    "县城", "城区", "市区", "境内", "辖区", "一带", "附近", "那边", "这边", "地界", "方向",
    "火车站", "汽车站", "客运站", "高铁站", "车站", "机场",
)

_PUNCTUATION: Final = frozenset("，。、；：！？,.;:!?（）()【】[]《》<>“”‘’\"'…—-/|·~～")

# Longest first, so 自治县 is stripped before 县.
_COUNTY_SUFFIXES: Final = ("自治县", "自治旗", "新区", "特区", "林区", "县", "区", "市", "旗")
_SHORT_NAME_SUFFIXES: Final = ("特别行政区", "自治区", "自治州", "地区", "省", "市", "盟")


def resources() -> Path:
    """The folder of the data files shipped in the cpca package, found without importing it."""
    # find_spec locates the package without importing it (and pandas with it).
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package, which ships the division list, is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


@functools.lru_cache(maxsize=2)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """`text` in simplified characters (OpenCC t2s).

    Simplified text comes back as it was, but for a few characters OpenCC
    also maps (乾县 → 干县): compare names through `spellings`.
    """
    return _converter("t2s.json").convert(text) if text else text


@functools.lru_cache(maxsize=65_536)  # a gazetteer is rebuilt with each grid snapshot
def spellings(name: str) -> tuple[str, ...]:
    """The forms of `name` that text read by `to_simplified` may show.

    As written; through t2s (乾县 → 干县); and its traditional spelling read
    back, where that keeps an older character (浚县 is 濬縣, read as 濬县).
    """
    traditional = _converter("s2t.json").convert(name)
    return tuple(dict.fromkeys((name, to_simplified(name), to_simplified(traditional))))


@functools.lru_cache(maxsize=1)
def nation_names() -> tuple[str, ...]:
    """The 56 peoples' names, also without 族 (伊犁哈萨克自治州 drops it), longest first."""
    names: set[str] = {"各族"}  # 龙胜各族自治县
    with (resources() / "56_nations.csv").open(encoding="utf-8") as fh:
        for line in fh:
            nation = line.strip()
            if not nation:
                continue
            names.add(nation)
            bare = nation.removesuffix("族")
            if len(bare) >= 2:
                names.add(bare)
    return tuple(sorted(names, key=len, reverse=True))


def _strip_nations(base: str) -> str:
    # 新疆维吾尔 → 新疆, 湘西土家族苗族 → 湘西, 龙胜各族 → 龙胜.
    stripped = True
    while stripped:
        stripped = False
        for nation in nation_names():
            if base.endswith(nation) and len(base) - len(nation) >= 2:
                base = base[: -len(nation)]
                stripped = True
                break
    if base.endswith("族") and len(base) >= 3:
        base = base[:-1]  # 东乡族自治县 → 东乡, 鄂温克族自治旗 → 鄂温克
    return base


def _without_suffix(name: str, suffixes: tuple[str, ...]) -> tuple[str] | None:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return (name[: -len(suffix)],)
    return None


def short_name(name: str) -> str | None:
    """The everyday short form of a province or city name (浙江省 → 浙江), if it has one."""
    split = _without_suffix(name, _SHORT_NAME_SUFFIXES)
    return None if split is None else _strip_nations(split[0])


def bare_name(name: str) -> str | None:
    """A county-level name without its suffix (威信县 → 威信, 峨边彝族自治县 → 峨边), if any."""
    split = _without_suffix(name, _COUNTY_SUFFIXES)
    if split is None:
        return None
    base = _strip_nations(split[0])
    return base if len(base) >= 2 else None


def contractions(name: str, level: str) -> tuple[str, ...]:
    """How people shorten an autonomous unit's name (海南藏族自治州 → 海南州)."""
    if level == "city" and name.endswith("自治州"):
        short = short_name(name)
        return (short + "州",) if short else ()
    if level == "county":
        for long, tail in (("自治县", "县"), ("自治旗", "旗")):
            if name.endswith(long):
                bare = bare_name(name)
                return (bare + tail,) if bare else ()
    return ()


def needs_evidence(form: int, key: str, kind: str) -> bool:
    """Whether a name written this way places a report only with evidence around it.

    Two-character county names: bare ones (威信), and full ones too, whose
    first character so often closes the word before (派出所和县公安局 is not
    和县, 示范县 not 范县, 变成县城 not 成县); and every everyday word kept
    as a district's name (BARE_WORD), which only its city before it bears out.
    """
    if form == BARE_WORD:
        return True
    if len(key) >= EVIDENCE_BELOW_CHARS:
        return False
    return form == BARE or (form == FULL and kind == "county")


def has_evidence(text: str, start: int, end: int) -> bool:
    """A locative word just before text[start:end] or a place word just after it."""
    before = text[max(0, start - 2) : start]
    return before.endswith(LOCATIVES) or text.startswith(PLACE_WORDS, end)


def starts_a_phrase(text: str, start: int) -> bool:
    """Nothing, or punctuation, before text[start]: no word it could be the end of."""
    return start == 0 or text[start - 1] in _PUNCTUATION
