"""The offline gazetteer: China's administrative divisions and the grid's place names.

The division list (province, city and county level, 12-digit adcodes, with a
centre point) ships with the `cpca` package as `resources/adcodes.csv`. It is
read with the csv module: importing cpca itself would pull in pandas and cost
seconds at start-up.

Each division is found by its full name, its short form (浙江, 杭州) and its
bare county form (威信), under the rules of `geo.placenames`; text in
traditional characters is read as simplified.

Which place a name means (`Gazetteer.mentions`), strongest reason first:

1. a province or city written just before it (长春市朝阳区, 北京朝阳);
2. the reporter's county (`prefer_county`): same county, city, province;
3. a province or city named elsewhere in the same text;
4. the surer form: a full name, then a contracted one, then a province's
   short form, a city's, a bare county name (海南 is 海南省, with 海南藏族
   自治州 as a candidate; 海南州 is the prefecture, being its contraction);
5. adcode order, which decides nothing: places still equal after 1-4 are
   *tied*, and a mention with a tie is ambiguous (鼓楼区 alone: four cities).
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from geo.datum import to_wgs84
from geo.placenames import (
    AFTER_ITS_CITY,
    BARE,
    BARE_WORD,
    CITY_SHORT,
    CONTRACTED,
    EVERYDAY_WORDS,
    FULL,
    MUNICIPALITIES,
    PROVINCE_SHORT,
    bare_name,
    contractions,
    has_evidence,
    needs_evidence,
    resources,
    short_name,
    spellings,
    starts_a_phrase,
    to_simplified,
)

LEVELS = ("province", "city", "county")

# Rows that are bookkeeping in the adcode scheme, not places anyone names.
_PLACEHOLDER_NAMES = frozenset(
    {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
)

# How far the true place may be from the point a lookup returns, by kind.
PRECISION_M: dict[str, float] = {
    "province": 200_000.0,
    "city": 30_000.0,
    "county": 10_000.0,
    "township": 3_000.0,
    "village": 1_000.0,
    "community": 500.0,
    "cell": 300.0,
}
_DEFAULT_PRECISION_M = 1_000.0

@dataclass(frozen=True)
class Division:
    """One administrative division; lat/lon is its centre in WGS-84."""

    adcode: str
    name: str
    lat: float
    lon: float
    level: str


@dataclass(frozen=True)
class Place:
    """A named place found in text, with how precise its point is."""

    name: str
    lat: float
    lon: float
    adcode: str
    kind: str
    precision_m: float


def level_of(adcode: str) -> str:
    """'province', 'city' or 'county' from the shape of a 12-digit adcode."""
    if adcode[2:] == "0" * 10:
        return "province"
    if adcode[4:] == "0" * 8:
        return "city"
    return "county"


def _normalise_adcode(adcode: str) -> str:
    code = adcode.strip()
    if not code.isdigit() or len(code) > 12:
        return ""
    return code.ljust(12, "0")


@functools.lru_cache(maxsize=1)
def load_divisions() -> tuple[Division, ...]:
    """All divisions with coordinates, in adcode order; read once per process."""
    out: list[Division] = []
    with (resources() / "adcodes.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["name"].strip()
            if name in _PLACEHOLDER_NAMES or not row["latitude"] or not row["longitude"]:
                # Placeholders and the few rows without a centre cannot place anything.
                continue
            adcode = row["adcode"].strip()
            # The shipped centres are in GCJ-02 (they match AMap's district
            # centres, ~500 m off GPS in Beijing); SafeGrid works in WGS-84.
            lat, lon = to_wgs84(float(row["latitude"]), float(row["longitude"]), "gcj02")
            out.append(Division(adcode, name, lat, lon, level_of(adcode)))
    out.sort(key=lambda d: d.adcode)
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _by_adcode() -> dict[str, Division]:
    return {d.adcode: d for d in load_divisions()}


def division(adcode: str) -> Division | None:
    """The division with this adcode (12 digits, or a 2/4/6-digit prefix form), if known."""
    return _by_adcode().get(_normalise_adcode(adcode))


def counties() -> tuple[Division, ...]:
    """All county-level divisions (区, 县, 县级市, 旗)."""
    return tuple(d for d in load_divisions() if d.level == "county")


def parent_names(adcode: str) -> tuple[str, ...]:
    """Names of the province and city above `adcode`, those that exist, broadest first."""
    code = _normalise_adcode(adcode)
    if not code:
        return ()
    table = _by_adcode()
    names: list[str] = []
    for parent in (code[:2] + "0" * 10, code[:4] + "0" * 8):
        found = table.get(parent)
        if parent != code and found is not None and found.name not in names:
            names.append(found.name)
    return tuple(names)


class Mention(NamedTuple):  # a tuple: one is built for every name found, and cheaply
    """A place name found in text, and every place it may mean, likeliest first.

    The first `tied` places are equally likely: more than one means the text
    does not say which. `candidates` are the places the text leaves open: all
    of them, unless a province or city written in the text settles it
    (长春市朝阳区 leaves Changchun's only).
    """

    written: str  # as found in the text, in simplified characters
    start: int
    end: int
    places: tuple[Place, ...]
    candidates: tuple[Place, ...]
    tied: int

    @property
    def ambiguous(self) -> bool:
        """True when the text leaves two or more places equally likely."""
        return self.tied > 1


class Gazetteer:
    """Finds known place names in free text: divisions plus names callers add."""

    def __init__(
        self, divisions: Iterable[Division] | None = None, *, short_names: bool = True
    ) -> None:
        # name as matched -> (place, form) pairs; the place keeps the official name.
        self._by_name: dict[str, list[tuple[Place, int]]] = {}
        self._lengths: dict[str, set[int]] = {}
        self._sorted_lengths: dict[str, tuple[int, ...]] | None = None
        self._count = 0
        self._guarded: set[str] = set()  # names with a place that needs evidence
        self._sure: set[str] = set()  # names with a place that does not
        for d in load_divisions() if divisions is None else divisions:
            place = self._place(d.name, d.lat, d.lon, d.adcode, d.level, None)
            if d.name in EVERYDAY_WORDS:
                # 城区, 老城区: words before they are names; 阳泉市城区 is one.
                if d.name in AFTER_ITS_CITY:
                    self._index(d.name, place, BARE_WORD)
                continue
            self._index(d.name, place, FULL)
            for contraction in contractions(d.name, d.level):
                self._index(contraction, place, CONTRACTED)
            if not short_names:
                continue
            if d.level == "county":
                other, form = bare_name(d.name), BARE
            else:
                other = short_name(d.name)
                form = PROVINCE_SHORT if d.level == "province" else CITY_SHORT
            if other is None:
                continue
            if other not in EVERYDAY_WORDS:
                self._index(other, place, form)
            elif form == BARE and other in AFTER_ITS_CITY:
                self._index(other, place, BARE_WORD)

    def __len__(self) -> int:
        return self._count

    def add(
        self,
        name: str,
        lat: float,
        lon: float,
        adcode: str,
        kind: str,
        precision_m: float | None = None,
    ) -> Place:
        """Add a place name (a village or community of the grid); adding it twice is harmless."""
        return self._index(name, self._place(name, lat, lon, adcode, kind, precision_m), FULL)

    @staticmethod
    def _place(
        name: str, lat: float, lon: float, adcode: str, kind: str, precision_m: float | None
    ) -> Place:
        key = "".join(name.split())
        if len(key) < 2:
            # One character matches inside almost any sentence.
            raise ValueError(f"place name too short to match reliably: {name!r}")
        finite = math.isfinite(lat) and math.isfinite(lon)
        if not (finite and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"bad coordinates for {name!r}: lat={lat!r}, lon={lon!r}")
        if precision_m is None:
            precision_m = PRECISION_M.get(kind, _DEFAULT_PRECISION_M)
        return Place(key, float(lat), float(lon), adcode, kind, float(precision_m))

    def _index(self, name: str, place: Place, form: int) -> Place:
        compact = "".join(name.split())
        # Text is read in simplified characters: the name goes in every way
        # such text may spell it (乾县 → 干县, 浚县 ↔ 濬縣).
        kept = place
        for key in spellings(compact):
            bucket = self._by_name.setdefault(key, [])
            same = [p for p, _ in bucket if (p.adcode, p.kind) == (place.adcode, place.kind)]
            if same:
                kept = same[0]  # already known by this spelling: the first entry stands
                continue
            bucket.append((place, form))
            (self._guarded if needs_evidence(form, key, place.kind) else self._sure).add(key)
            if key == compact:
                self._count += 1
            lengths = self._lengths.setdefault(key[:2], set())
            if len(key) not in lengths:
                lengths.add(len(key))
                self._sorted_lengths = None
        return kept

    def _lengths_by_prefix(self) -> dict[str, tuple[int, ...]]:
        if self._sorted_lengths is None:
            self._sorted_lengths = {
                ch: tuple(sorted(ls, reverse=True)) for ch, ls in self._lengths.items()
            }
        return self._sorted_lengths

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        """Names in `text`, longest first then by position; none inside a longer one."""
        lengths = self._lengths_by_prefix()
        by_name = self._by_name
        spans: list[tuple[int, int, str]] = []
        # Index by the first two characters (every name has two or more), then
        # only the name lengths that exist for them: about one dict probe per
        # character, however many names are loaded.
        for i in range(len(text) - 1):
            for n in lengths.get(text[i : i + 2], ()):
                candidate = text[i : i + n]
                if len(candidate) == n and candidate in by_name:
                    spans.append((i, i + n, candidate))
        spans.sort(key=lambda s: (s[0] - s[1], s[0]))
        kept: list[tuple[int, int, str]] = []
        for start, end, name in spans:
            if not any(ks <= start and end <= ke for ks, ke, _ in kept):
                kept.append((start, end, name))
        return kept

    def mentions(self, text: str, prefer_county: str | None = None) -> list[Mention]:
        """The place names in `text`, longest first, each with the places it may mean.

        Ranked by the rules in this module's docstring; `prefer_county` is the
        reporter's county (6-digit adcode). A bare two-character county name
        counts only with evidence (`geo.placenames`).
        """
        compact = to_simplified("".join(text.split()))
        spans = self._spans(compact)
        by_name = self._by_name
        found: list[tuple[int, int, str, list[tuple[Place, int]]]] = []
        named: set[tuple[str, int, int]] | None = None
        # Names that need no evidence: a guarded name that overlaps one is a
        # misreading (天津南开 holds 津南, but 天津 and 南开 are what it says).
        sure = [(s, e) for s, e, key in spans if key in self._sure]
        for start, end, key in spans:
            entries = by_name[key]
            if key in self._guarded:
                if any(s < end and start < e and (s, e) != (start, end) for s, e in sure):
                    entries = [(p, f) for p, f in entries if not needs_evidence(f, key, p.kind)]
                if named is None:
                    named = self._named(spans)
                entries = self._evident(entries, key, compact, start, end, named)
            if entries:
                found.append((start, end, key, entries))
        prefer = "".join(prefer_county.split())[:6] if prefer_county else ""
        # What each mention says about where: only needed to rank a shared name.
        shared = (
            [_shared_prefix(p for p, _ in entries) for *_, entries in found]
            if any(len(entries) > 1 for *_, entries in found)
            else []
        )
        return [
            _mention(compact, found, shared, k, prefer) for k in range(len(found))
        ]

    def _named(self, spans: list[tuple[int, int, str]]) -> set[tuple[str, int, int]]:
        # Provinces and cities the text names, and where: parents that let a
        # guarded name count.
        return {
            (p.adcode, start, end)
            for start, end, key in spans
            for p, _ in self._by_name[key]
            if p.kind in ("province", "city")
        }

    @staticmethod
    def _evident(
        entries: list[tuple[Place, int]],
        key: str,
        text: str,
        start: int,
        end: int,
        named: set[tuple[str, int, int]],
    ) -> list[tuple[Place, int]]:
        """The entries of a guarded name at text[start:end] that the text bears out."""
        around = has_evidence(text, start, end)
        opening = starts_a_phrase(text, start)
        out = []
        for p, form in entries:
            province, city = _parents(p)
            if form == BARE_WORD:
                # Only right after its own city (or municipality): 毕节大方, 重庆江北.
                own = {city, province} if p.adcode[:2] in MUNICIPALITIES else {city}
                ok = any(code in own and e == start for code, _, e in named)
            elif not needs_evidence(form, key, p.kind) or around:
                ok = True
            else:
                # A parent named elsewhere counts, but not in this very name
                # (朝阳 is not evidence for 朝阳县 under 朝阳市).
                ok = (opening and form == FULL) or any(
                    code in (province, city) and s != start for code, s, _ in named
                )
            if ok:
                out.append((p, form))
        return out

    def lookup(self, text: str, prefer_county: str | None = None) -> list[Place]:
        """Every place `text` may name, mention by mention (`mentions`), each place once."""
        out: list[Place] = []
        seen: set[tuple[str, str]] = set()
        for mention in self.mentions(text, prefer_county):
            for place in mention.places:
                if (place.adcode, place.kind) not in seen:
                    seen.add((place.adcode, place.kind))
                    out.append(place)
        return out


def _mention(
    text: str,
    found: list[tuple[int, int, str, list[tuple[Place, int]]]],
    shared: list[str],
    k: int,
    prefer: str,
) -> Mention:
    start, end, key, entries = found[k]
    if len(entries) == 1:
        only = (entries[0][0],)
        return Mention(key, start, end, only, only, 1)
    # A parent written just before (长春市朝阳区, 长春的朝阳区) says the most.
    reach = start - 1 if text[start - 1 : start] == "的" else start
    before = [shared[j] for j, (_, e, _, _) in enumerate(found) if e in (start, reach)]
    elsewhere = [shared[j] for j in range(len(found)) if j != k]

    def rank(entry: tuple[Place, int]) -> tuple[int, int, int, int, str]:
        p, form = entry
        adjacent = max((_affinity(p.adcode, c) for c in before), default=0)
        near = max((_affinity(p.adcode, c) for c in elsewhere), default=0)
        return (-adjacent, -_affinity(p.adcode, prefer), -near, form, p.adcode)

    ranked = sorted(entries, key=rank)
    keys = [rank(e)[:4] for e in ranked]
    tied = sum(1 for key_ in keys if key_ == keys[0])
    places = tuple(p for p, _ in ranked)
    top_adjacent, _, top_near, _ = keys[0]
    if top_adjacent or top_near:
        # The text named a parent: places under other parents are out.
        candidates = tuple(p for p, r in zip(places, keys, strict=True)
                           if (r[0], r[2]) == (top_adjacent, top_near))
    else:
        candidates = places
    return Mention(key, start, end, places, candidates, tied)


def _parents(p: Place) -> tuple[str, str]:
    return (p.adcode[:2] + "0" * 10, p.adcode[:4] + "0" * 8)


def _shared_prefix(places: Iterable[Place]) -> str:
    # The county (6), city (4) or province (2) digits all these places share.
    codes = [p.adcode for p in places]
    for n in (6, 4, 2):
        if len({c[:n] for c in codes}) == 1:
            return codes[0][:n]
    return ""


def _affinity(adcode: str, prefix: str) -> int:
    # 3: same county, 2: same city, 1: same province, 0: elsewhere or unknown.
    for score, n in ((3, 6), (2, 4), (1, 2)):
        if len(prefix) >= n and adcode[:n] == prefix[:n]:
            return score
    return 0
