"""The offline gazetteer: China's administrative divisions and the grid's place names.

The division list (province, city and county level, 12-digit adcodes, with a
centre point) ships with the `cpca` package as `resources/adcodes.csv`. It is
read with the csv module: importing cpca itself would pull in pandas and cost
seconds at start-up.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from geo.datum import to_wgs84

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

# Short forms ("杭州" for 杭州市) that are also everyday words or street
# names in every town (中山路, 日照 "sunlight", 来宾 "guests"); matching them
# in free text would place reports in the wrong city.
_SHORT_NAME_STOPLIST = frozenset(
    {"中山", "来宾", "日照", "白银", "安康", "普洱", "大同", "阿里", "开封", "兴安", "玉树"}
)
_SHORT_NAME_SUFFIXES = ("特别行政区", "自治区", "自治州", "地区", "省", "市", "盟")


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


def _resources() -> Path:
    # find_spec locates the package without importing it (and pandas with it).
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package, which ships the division list, is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


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
    with (_resources() / "adcodes.csv").open(encoding="utf-8", newline="") as fh:
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


@functools.lru_cache(maxsize=1)
def _nation_names() -> tuple[str, ...]:
    names: set[str] = set()
    with (_resources() / "56_nations.csv").open(encoding="utf-8") as fh:
        for line in fh:
            nation = line.strip()
            if not nation:
                continue
            names.add(nation)
            # Prefecture names drop the 族 for some peoples: 伊犁哈萨克自治州.
            bare = nation.removesuffix("族")
            if len(bare) >= 2:
                names.add(bare)
    return tuple(sorted(names, key=len, reverse=True))


def short_name(name: str) -> str | None:
    """The everyday short form of a province or city name (浙江省 → 浙江), if it has one."""
    for suffix in _SHORT_NAME_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            base = name[: -len(suffix)]
            break
    else:
        return None
    # 新疆维吾尔 → 新疆, 湘西土家族苗族 → 湘西.
    stripped = True
    while stripped:
        stripped = False
        for nation in _nation_names():
            if base.endswith(nation) and len(base) - len(nation) >= 2:
                base = base[: -len(nation)]
                stripped = True
                break
    return base


class Gazetteer:
    """Finds known place names in free text: divisions plus names callers add."""

    def __init__(
        self, divisions: Iterable[Division] | None = None, *, short_names: bool = True
    ) -> None:
        self._by_name: dict[str, list[Place]] = {}
        self._lengths: dict[str, set[int]] = {}
        self._sorted_lengths: dict[str, tuple[int, ...]] | None = None
        self._count = 0
        for d in load_divisions() if divisions is None else divisions:
            self.add(d.name, d.lat, d.lon, d.adcode, d.level)
            if short_names and d.level in ("province", "city"):
                short = short_name(d.name)
                if short is not None and short not in _SHORT_NAME_STOPLIST:
                    self.add(short, d.lat, d.lon, d.adcode, d.level)

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
        key = "".join(name.split())
        if len(key) < 2:
            # One character matches inside almost any sentence.
            raise ValueError(f"place name too short to match reliably: {name!r}")
        finite = math.isfinite(lat) and math.isfinite(lon)
        if not (finite and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"bad coordinates for {name!r}: lat={lat!r}, lon={lon!r}")
        if precision_m is None:
            precision_m = PRECISION_M.get(kind, _DEFAULT_PRECISION_M)
        place = Place(key, float(lat), float(lon), adcode, kind, float(precision_m))
        bucket = self._by_name.setdefault(key, [])
        for existing in bucket:
            if existing.adcode == adcode and existing.kind == kind:
                return existing
        bucket.append(place)
        self._count += 1
        lengths = self._lengths.setdefault(key[0], set())
        if len(key) not in lengths:
            lengths.add(len(key))
            self._sorted_lengths = None
        return place

    def _lengths_by_first_char(self) -> dict[str, tuple[int, ...]]:
        if self._sorted_lengths is None:
            self._sorted_lengths = {
                ch: tuple(sorted(ls, reverse=True)) for ch, ls in self._lengths.items()
            }
        return self._sorted_lengths

    def lookup(self, text: str, prefer_county: str | None = None) -> list[Place]:
        """Places named in `text`, longest name first.

        A name found only inside a longer one is dropped (朝阳 inside 朝阳区).
        A name shared by several places yields all of them: those in
        `prefer_county` (6-digit adcode) first, then same city, same province;
        then those under a province or city named in the same text; then by
        adcode.
        """
        compact = "".join(text.split())
        lengths = self._lengths_by_first_char()
        by_name = self._by_name
        spans: list[tuple[int, int, str]] = []
        # Index by first character, then only the name lengths that exist for
        # it: a few dict probes per character, however many names are loaded.
        for i, ch in enumerate(compact):
            for n in lengths.get(ch, ()):
                candidate = compact[i : i + n]
                if len(candidate) == n and candidate in by_name:
                    spans.append((i, i + n, candidate))
        spans.sort(key=lambda s: (s[0] - s[1], s[0]))
        kept: list[tuple[int, int, str]] = []
        for start, end, name in spans:
            if not any(ks <= start and end <= ke for ks, ke, _ in kept):
                kept.append((start, end, name))
        prefer = "".join(prefer_county.split())[:6] if prefer_county else ""
        # Provinces and cities named in the same text break ties next:
        # 西湖区 after 杭州市 is Hangzhou's, not Nanchang's.
        context = [
            p.adcode[: 2 if p.kind == "province" else 4]
            for _, _, name in kept
            for p in by_name[name]
            if p.kind in ("province", "city") and len(by_name[name]) == 1
        ]

        def rank(p: Place) -> tuple[int, int, str]:
            near = max((_affinity(p.adcode, c) for c in context), default=0)
            return (-_affinity(p.adcode, prefer), -near, p.adcode)

        out: list[Place] = []
        seen: set[tuple[str, str]] = set()
        for _, _, name in kept:
            for place in sorted(by_name[name], key=rank):
                if (place.adcode, place.kind) not in seen:
                    seen.add((place.adcode, place.kind))
                    out.append(place)
        return out


def _affinity(adcode: str, prefix: str) -> int:
    # 3: same county, 2: same city, 1: same province, 0: elsewhere or unknown.
    for score, n in ((3, 6), (2, 4), (1, 2)):
        if len(prefix) >= n and adcode[:n] == prefix[:n]:
            return score
    return 0
