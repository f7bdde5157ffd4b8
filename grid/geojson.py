"""Grid cells (网格) and stations (派出所) as GeoJSON (RFC 7946), read and checked.

The file is one FeatureCollection. Every Feature says what it is in
`properties.kind`:

- `"cell"`: Polygon geometry (one exterior ring, no holes; a MultiPolygon of
  exactly one polygon is taken as that polygon) and properties `code`, `name`,
  `station_code`; optional `village_code`, `township_code`, `county_code`,
  which must agree with the code when given.
- `"station"`: Point geometry or null, properties `code`, `name`,
  `county_code` (6 digits); optional `station_kind` (`"station"`, the
  default, or `"county_desk"`), `duty_phone` (E.164), `county_bureau`.

A cell code is the hierarchy itself: province (2 digits) → city (4) → county
(6) → township (9) → village/community (12, the statistical division code)
→ grid (+3 = 15 digits). Codes of 9 to 15 digits are accepted, as the SMS
grammar accepts them, with a warning when not 15.

Reading never stops at the first problem and never raises on bad input: every
problem is collected, with the cell code when known. Decisions:

- An unclosed ring is closed and reported as a warning (`unclosed_ring`):
  RFC 7946 requires closed rings, but the intent is unambiguous.
- Rings are stored counter-clockwise (RFC 7946's right-hand rule), whatever
  the file's orientation, so export → read gives back equal records.
- Swapped coordinates (`[lat, lon]`, common in hand-made files) are rejected,
  not silently swapped back: a wrong guess would route reports to the wrong
  station.
- A third coordinate (altitude) is dropped.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.validation import explain_validity

from geo.distance import EARTH_RADIUS_M

# Metres per degree of latitude (and of longitude at the equator).
_M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0

# Problems that do not stop an import; every other kind does.
WARNING_KINDS = frozenset({"unclosed_ring", "code_not_15_digits", "gap"})

PROBLEM_KINDS = (
    "malformed",  # not JSON / not a FeatureCollection / a member missing or of the wrong type
    "unsupported_crs",  # a legacy `crs` member naming anything but WGS-84 lon/lat
    "not_polygon",  # a cell whose geometry is not a (single) Polygon
    "has_holes",  # a cell Polygon with interior rings: a cell is one exterior ring
    "not_point",  # a station whose geometry is neither a Point nor null
    "invalid_polygon",  # self-intersection, too few points, no area (GEOS explains)
    "unclosed_ring",  # warning: closed for you
    "coordinates_out_of_range",  # lon outside [-180, 180], lat outside [-90, 90], NaN
    "swapped_lat_lon",  # looks like [lat, lon] in China
    "duplicate_code",  # the same cell or station code twice in the file
    "unknown_station",  # a cell's station_code is neither in the file nor known
    "bad_code",  # not 9-15 digits, a zero division part, or disagreeing derived codes
    "code_not_15_digits",  # warning: 9-14 digits, allowed but not a full grid code
    "bad_phone",  # a duty phone that is not E.164
    "overlap",  # two cells share more than the tolerance of area (check_topology)
    "gap",  # warning: a hole inside a county's cells (check_topology)
)

STATION_KINDS = ("station", "county_desk")

_ACCEPTED_CRS = frozenset({
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "EPSG:4326",
    "urn:ogc:def:crs:EPSG::4326",
})
_DIGITS = re.compile(r"[0-9]+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_NAME_MAX = 100
_NUMBER_TYPES = (float, int)
_STATION_CODE_MAX = 32


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, by cell (or station) code when known."""

    code: str | None
    kind: str
    message: str
    # Other codes involved: the second cell of an overlap, the cells around a gap.
    related: tuple[str, ...] = ()

    @property
    def blocking(self) -> bool:
        """True when this problem stops an import (warnings do not)."""
        return self.kind not in WARNING_KINDS

    def __str__(self) -> str:
        level = "error" if self.blocking else "warning"
        return f"{level} {self.code or '-'} {self.kind}: {self.message}"


@dataclass(frozen=True)
class Divisions:
    """The division codes a cell code implies (12-digit, zero-padded, except county)."""

    province: str
    city: str
    county: str  # 6 digits, as GridCell.county_code
    township: str  # 12 digits: first 9 + "000"
    village: str  # 12 digits; the township code for codes shorter than 12


@dataclass(frozen=True)
class CellRecord:
    """A grid cell as read: ring closed, counter-clockwise, (lon, lat) pairs."""

    code: str
    name: str
    ring: tuple[tuple[float, float], ...]
    station_code: str
    village_code: str
    township_code: str
    county_code: str


@dataclass(frozen=True)
class StationRecord:
    """A police station or county duty desk as read."""

    code: str
    name: str
    county_code: str
    kind: str = "station"
    duty_phone: str | None = None
    county_bureau: str | None = None
    location: tuple[float, float] | None = None  # (lon, lat)


@dataclass(frozen=True)
class ParsedGrid:
    """What a file holds: the records that could be read, and every problem found."""

    cells: tuple[CellRecord, ...]
    stations: tuple[StationRecord, ...]
    problems: tuple[Problem, ...]

    @property
    def blocking(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.blocking)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.blocking)


def divisions(code: str) -> Divisions:
    """Division codes implied by a 9-15 digit cell code (no checking; see parse)."""
    township = code[:9] + "000"
    return Divisions(
        province=code[:2] + "0" * 10,
        city=code[:4] + "0" * 8,
        county=code[:6],
        township=township,
        village=code[:12] if len(code) >= 12 else township,
    )


def load_feature_collection(
    text: str | bytes, *, known_stations: Collection[str] = frozenset()
) -> ParsedGrid:
    """`parse_feature_collection` of JSON text; invalid JSON is a `malformed` problem."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        elif text.startswith("\ufeff"):
            text = text[1:]
        data = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return _failed(f"not UTF-8 text (byte {exc.start}): GeoJSON is UTF-8")
    except json.JSONDecodeError as exc:
        return _failed(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return _failed(f"not valid JSON: {exc}")
    return parse_feature_collection(data, known_stations=known_stations)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _failed(message: str) -> ParsedGrid:
    return ParsedGrid((), (), (Problem(None, "malformed", message),))


def parse_feature_collection(
    data: object, *, known_stations: Collection[str] = frozenset()
) -> ParsedGrid:
    """Read a FeatureCollection of cells and stations, collecting every problem.

    A cell's station must be in the file or in `known_stations` (the stations
    already stored), else it is an `unknown_station` problem. Records that
    could be read are returned even when problems were found elsewhere.
    """
    if not isinstance(data, Mapping):
        return _failed("the top level must be a GeoJSON object (a FeatureCollection)")
    if data.get("type") != "FeatureCollection":
        return _failed(f"type must be 'FeatureCollection', not {data.get('type')!r}")
    features = data.get("features")
    if not isinstance(features, list):
        return _failed("'features' must be a list")
    reader = _Reader()
    crs = data.get("crs")
    if crs is not None:
        reader.check_crs(crs)
    for n, feature in enumerate(features):
        reader.feature(n, feature)
    reader.finish()
    station_codes = {s.code for s in reader.stations} | set(known_stations)
    for cell in reader.cells:
        if cell.station_code not in station_codes:
            reader.problem(
                cell.code, "unknown_station",
                f"station_code {cell.station_code!r} is neither in the file nor stored",
            )
    return ParsedGrid(tuple(reader.cells), tuple(reader.stations), tuple(reader.problems))


class _Reader:
    """Reads features one at a time, keeping records and problems."""

    def __init__(self) -> None:
        self.cells: list[CellRecord] = []
        self.stations: list[StationRecord] = []
        self.problems: list[Problem] = []
        self._cell_codes: set[str] = set()
        self._station_codes: set[str] = set()
        self._pending: list[tuple[str, str, str, str, list[tuple[float, float]]]] = []

    def problem(self, code: str | None, kind: str, message: str) -> None:
        self.problems.append(Problem(code, kind, message))

    def check_crs(self, crs: object) -> None:
        name = None
        if isinstance(crs, Mapping):
            props = crs.get("properties")
            if isinstance(props, Mapping):
                name = props.get("name")
        if name not in _ACCEPTED_CRS:
            self.problem(None, "unsupported_crs",
                         f"crs {name!r}: coordinates must be WGS-84 longitude, latitude "
                         "(RFC 7946; no crs member, or CRS84/EPSG:4326)")

    def feature(self, n: int, feature: object) -> None:
        where = f"feature {n}"
        if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
            self.problem(None, "malformed", f"{where}: not a GeoJSON Feature object")
            return
        props = feature.get("properties")
        if not isinstance(props, Mapping):
            self.problem(None, "malformed", f"{where}: 'properties' must be an object")
            return
        code = props.get("code")
        label = code if isinstance(code, str) and code.strip() else None
        if label is not None:
            label = label.strip()
        kind = props.get("kind")
        if kind == "cell":
            self.cell(where, label, props, feature.get("geometry"))
        elif kind == "station":
            self.station(where, label, props, feature.get("geometry"))
        else:
            self.problem(label, "malformed",
                         f"{where}: properties.kind must be 'cell' or 'station', not {kind!r}")

    def cell(self, where: str, code: str | None, props: Mapping[str, Any],
             geometry: object) -> None:
        count = len(self.problems)
        if code is None:
            self.problem(None, "bad_code", f"{where}: a cell needs a code, a text of digits, "
                                           f"got {_short(props.get('code'))}")
        else:
            self._check_cell_code(where, code, props)
        name = self._text(where, code, props, "name", _NAME_MAX)
        station = self._text(where, code, props, "station_code", _STATION_CODE_MAX)
        points = self._cell_points(where, code, geometry)
        if code is not None and code in self._cell_codes:
            self.problem(code, "duplicate_code", f"{where}: cell code {code} appears again")
            return
        if code is not None:
            self._cell_codes.add(code)
        blocked = any(p.blocking for p in self.problems[count:])
        if blocked or code is None or name is None or station is None or points is None:
            return
        # The polygon itself is checked for all cells at once in `finish`
        # (one GEOS call for 100,000 cells instead of one each).
        self._pending.append((where, code, name, station, points))

    def finish(self) -> None:
        """Check the pending cells' polygons together and keep the valid ones."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        rings = _rings([points for *_, points in pending])
        polygons = shapely.polygons(rings)
        valid = shapely.is_valid(polygons).tolist()
        area = shapely.area(polygons).tolist()
        ccw = shapely.is_ccw(rings).tolist()
        for k, (where, code, name, station, points) in enumerate(pending):
            if not valid[k]:
                self.problem(code, "invalid_polygon",
                             f"{where}: {explain_validity(polygons[k])}")
                continue
            if not area[k] > 0:
                self.problem(code, "invalid_polygon", f"{where}: the polygon has no area")
                continue
            d = divisions(code)
            ring = tuple(points) if ccw[k] else tuple(reversed(points))
            self.cells.append(
                CellRecord(code, name, ring, station, d.village, d.township, d.county)
            )

    def _check_cell_code(self, where: str, code: str, props: Mapping[str, Any]) -> None:
        if not _DIGITS.fullmatch(code) or not 9 <= len(code) <= 15:
            self.problem(code, "bad_code",
                         f"{where}: a cell code is 9-15 digits (12-digit village code + "
                         f"3-digit grid number), got {code!r}")
            return
        parts = (("county", code[4:6]), ("township", code[6:9]), ("village", code[9:12]))
        for part, digits in parts:
            if digits and set(digits) == {"0"}:
                self.problem(code, "bad_code",
                             f"{where}: the {part} part of {code} is all zeros: not a grid "
                             "code under a real division")
                return
        if len(code) != 15:
            self.problem(code, "code_not_15_digits",
                         f"{where}: {len(code)} digits; a full grid code is 15 "
                         "(12-digit village code + 3-digit grid number)")
        d = divisions(code)
        for key, expected in (("county_code", d.county), ("township_code", d.township),
                              ("village_code", d.village)):
            given = props.get(key)
            if given is not None and given != expected:
                self.problem(code, "bad_code",
                             f"{where}: {key} {given!r} disagrees with the code "
                             f"(which implies {expected})")

    def _text(self, where: str, code: str | None, props: Mapping[str, Any], key: str,
              max_length: int, *, required: bool = True) -> str | None:
        value = props.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(code, "malformed", f"{where}: properties.{key} must be a non-empty text")
            return None
        value = value.strip()
        if len(value) > max_length:
            self.problem(code, "malformed",
                         f"{where}: properties.{key} is longer than {max_length} characters")
            return None
        return value

    def _cell_points(self, where: str, code: str | None,
                     geometry: object) -> list[tuple[float, float]] | None:
        if not isinstance(geometry, Mapping):
            self.problem(code, "not_polygon", f"{where}: a cell needs a Polygon geometry")
            return None
        gtype = geometry.get("type")
        coords = geometry.get("coordinates")
        if gtype == "MultiPolygon":
            if not isinstance(coords, list):
                self.problem(code, "malformed", f"{where}: MultiPolygon coordinates must be a list")
                return None
            if len(coords) != 1:
                self.problem(code, "not_polygon",
                             f"{where}: a MultiPolygon of {len(coords)} parts; a cell is one "
                             "polygon: split it into one cell per part")
                return None
            gtype, coords = "Polygon", coords[0]
        if gtype != "Polygon":
            self.problem(code, "not_polygon", f"{where}: a cell needs a Polygon, not {gtype!r}")
            return None
        if not isinstance(coords, list) or not coords:
            self.problem(code, "malformed",
                         f"{where}: Polygon coordinates must be a list of rings")
            return None
        if len(coords) > 1:
            self.problem(code, "has_holes",
                         f"{where}: the polygon has {len(coords) - 1} hole(s); a cell is one "
                         "exterior ring: make the inside its own cell")
            return None
        points = self._positions(where, code, coords[0])
        if points is None or not self._in_range(where, code, points):
            return None
        if len(points) >= 2 and points[0] != points[-1]:
            self.problem(code, "unclosed_ring",
                         f"{where}: the ring does not end where it starts; closed it")
            points.append(points[0])
        if len(points) < 4:
            self.problem(code, "invalid_polygon",
                         f"{where}: a ring needs at least 3 distinct points, got "
                         f"{max(len(points) - 1, 0)}")
            return None
        return points

    def _positions(self, where: str, code: str | None,
                   ring: object) -> list[tuple[float, float]] | None:
        if not isinstance(ring, list):
            self.problem(code, "malformed", f"{where}: a ring must be a list of positions")
            return None
        points: list[tuple[float, float]] = []
        for i, position in enumerate(ring):
            xy = _position(position)
            if xy is None:
                self.problem(code, "malformed",
                             f"{where}: position {i} must be [longitude, latitude] numbers, "
                             f"got {_short(position)}")
                return None
            points.append(xy)
        return points

    def _in_range(self, where: str, code: str | None,
                  points: Sequence[tuple[float, float]]) -> bool:
        if points and _looks_swapped(points):
            self.problem(code, "swapped_lat_lon",
                         f"{where}: coordinates look like [latitude, longitude] (first "
                         f"{_short(list(points[0]))}); GeoJSON order is [longitude, latitude]")
            return False
        for i, (lon, lat) in enumerate(points):
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                self.problem(code, "coordinates_out_of_range",
                             f"{where}: position {i} [{lon}, {lat}] is outside longitude "
                             "[-180, 180] / latitude [-90, 90] (WGS-84 degrees expected)")
                return False
        return True

    def station(self, where: str, code: str | None, props: Mapping[str, Any],
                geometry: object) -> None:
        count = len(self.problems)
        if code is None:
            self.problem(None, "bad_code",
                         f"{where}: a station needs a code (text), got {_short(props.get('code'))}")
        elif len(code) > _STATION_CODE_MAX:
            self.problem(code, "bad_code",
                         f"{where}: a station code is at most {_STATION_CODE_MAX} characters")
        name = self._text(where, code, props, "name", _NAME_MAX)
        county = props.get("county_code")
        if not isinstance(county, str) or not (_DIGITS.fullmatch(county) and len(county) == 6):
            self.problem(code, "bad_code",
                         f"{where}: county_code must be the 6-digit county code, got "
                         f"{_short(county)}")
            county = None
        kind = props.get("station_kind", "station")
        if kind not in STATION_KINDS:
            self.problem(code, "malformed",
                         f"{where}: station_kind must be 'station' or 'county_desk', "
                         f"not {_short(kind)}")
        phone = self._text(where, code, props, "duty_phone", 20, required=False)
        if phone is not None and not _E164.fullmatch(phone):
            self.problem(code, "bad_phone",
                         f"{where}: duty_phone must be E.164, e.g. +8613800000000")
        bureau = self._text(where, code, props, "county_bureau", _NAME_MAX, required=False)
        location = self._station_point(where, code, geometry)
        if code is not None and code in self._station_codes:
            self.problem(code, "duplicate_code", f"{where}: station code {code} appears again")
            return
        if code is not None:
            self._station_codes.add(code)
        if any(p.blocking for p in self.problems[count:]):
            return
        if code is None or name is None or county is None or not isinstance(kind, str):
            return
        self.stations.append(StationRecord(code, name, county, kind, phone, bureau, location))

    def _station_point(self, where: str, code: str | None,
                       geometry: object) -> tuple[float, float] | None:
        if geometry is None:
            return None
        if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
            gtype = geometry.get("type") if isinstance(geometry, Mapping) else geometry
            self.problem(code, "not_point",
                         f"{where}: a station's geometry is a Point or null, not {_short(gtype)}")
            return None
        xy = _position(geometry.get("coordinates"))
        if xy is None:
            self.problem(code, "malformed",
                         f"{where}: Point coordinates must be [longitude, latitude] numbers")
            return None
        if not self._in_range(where, code, [xy]):
            return None
        return xy


def _position(position: object) -> tuple[float, float] | None:
    """(lon, lat) from a GeoJSON position, or None when it is not one."""
    # `type(v) in` rather than isinstance: bool is an int but never a coordinate.
    if not isinstance(position, list | tuple) or not 2 <= len(position) <= 3:
        return None
    for v in position:
        if type(v) not in _NUMBER_TYPES:
            return None
    return float(position[0]), float(position[1])


def _looks_swapped(points: Sequence[tuple[float, float]]) -> bool:
    """[lat, lon] in China: every "longitude" is a Chinese latitude and every "latitude"
    a Chinese longitude (China spans about 73-136 E, 3-54 N; no overlap, so no doubt)."""
    return all(3.0 <= x <= 54.0 and 73.0 <= y <= 136.0 for x, y in points)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- topology -----------------------------------------------------------------


def check_topology(
    cells: Sequence[CellRecord],
    *,
    overlap_m2: float = 1.0,
    gap_m2: float = 1.0,
    snap_deg: float = 1e-7,
) -> tuple[Problem, ...]:
    """Invalid polygons, overlaps and gaps among `cells`, sorted by cell code.

    Overlap: two cells whose interiors share more than `overlap_m2` square
    metres (found with an STRtree; touching borders and rounding slivers do
    not count). Gap: a hole inside the union of one county's cells larger
    than `gap_m2`, reported with the cells around it (a gap at the county's
    outer edge cannot be told from the county's shape, so it is not one);
    borders closer than `snap_deg` degrees (1e-7: about 1 cm) count as shared.
    Areas are approximate: degrees² scaled by cos(latitude), fine at cell
    scale. Rings need not be closed; invalid ones are reported and left out.
    """
    ordered = sorted(cells, key=lambda c: c.code)
    problems: list[Problem] = []
    kept: list[CellRecord] = []
    points: list[list[tuple[float, float]]] = []
    for cell in ordered:
        closed = _closed_points(cell.ring)
        if closed is None:
            problems.append(Problem(cell.code, "invalid_polygon",
                                    "the ring is not a polygon (fewer than 3 points, or "
                                    "coordinates that are not finite numbers)"))
            continue
        kept.append(cell)
        points.append(closed)
    if not kept:
        return tuple(sorted(problems, key=lambda p: p.code or ""))
    arr = shapely.polygons(_rings(points))
    valid = shapely.is_valid(arr)
    for k in np.flatnonzero(~valid).tolist():
        problems.append(Problem(kept[k].code, "invalid_polygon", explain_validity(arr[k])))
    arr = arr[valid]
    kept = [c for c, ok in zip(kept, valid.tolist(), strict=True) if ok]
    if not kept:
        return tuple(sorted(problems, key=lambda p: p.code or ""))
    codes = [c.code for c in kept]
    tree = shapely.STRtree(arr)
    problems.extend(_overlaps(arr, tree, codes, overlap_m2))
    problems.extend(_gaps(arr, tree, codes, [c.county_code for c in kept], gap_m2, snap_deg))
    return tuple(sorted(problems, key=lambda p: (p.code or "", p.kind, p.related)))


def _closed_points(ring: Sequence[Sequence[float]]) -> list[tuple[float, float]] | None:
    """The ring as closed (lon, lat) floats, or None when it cannot be a polygon ring."""
    try:
        points = [(float(p[0]), float(p[1])) for p in ring]
    except (TypeError, ValueError, IndexError):
        return None
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(points) < 4 or not all(math.isfinite(v) for p in points for v in p):
        return None
    return points


def _rings(rings: Sequence[Sequence[tuple[float, float]]]) -> Any:
    """GEOS linear rings from closed point lists of 4 or more points, in one call."""
    counts = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    flat = np.fromiter((v for r in rings for p in r for v in p), dtype=np.float64,
                       count=2 * int(counts.sum()))
    index = np.repeat(np.arange(len(rings), dtype=np.int64), counts)
    return shapely.linearrings(flat.reshape(-1, 2), indices=index)


def _m2_per_deg2(lat: Any) -> Any:
    """Square metres per square degree at latitude(s) `lat` (float or array)."""
    return _M_PER_DEG * _M_PER_DEG * np.cos(np.radians(lat))


def _overlaps(arr: Any, tree: shapely.STRtree, codes: Sequence[str],
              overlap_m2: float) -> list[Problem]:
    pairs = tree.query(arr, predicate="intersects")
    left, right = pairs[0], pairs[1]
    keep = left < right
    left, right = left[keep], right[keep]
    if not len(left):
        return []
    # Interiors meet (DE-9IM "T********"): shared borders drop out cheaply,
    # before any intersection is computed.
    inner = shapely.relate_pattern(arr[left], arr[right], "T********")
    left, right = left[inner], right[inner]
    if not len(left):
        return []
    shared = shapely.intersection(arr[left], arr[right])
    lat = shapely.get_y(shapely.centroid(shared))
    area = shapely.area(shared) * _m2_per_deg2(np.nan_to_num(lat))
    out: list[Problem] = []
    for i, j, a in zip(left.tolist(), right.tolist(), area.tolist(), strict=True):
        if a > overlap_m2:
            out.append(Problem(codes[i], "overlap",
                               f"overlaps cell {codes[j]} by about {a:,.0f} m²", (codes[j],)))
    return out


def _gaps(arr: Any, tree: shapely.STRtree, codes: Sequence[str], counties: Sequence[str],
          gap_m2: float, snap_deg: float) -> list[Problem]:
    by_county: dict[str, list[int]] = defaultdict(list)
    for i, county in enumerate(counties):
        by_county[county].append(i)
    # Neighbours' borders computed separately differ in the last bits, and an
    # exact union leaves those slivers open, which joins every hole to the
    # outside (measured: no gap found at all). Coordinates rounded to a
    # `snap_deg` grid make shared borders identical; a plain union of those is
    # ~4x faster than GEOS's snap-rounding union (`grid_size`), the fallback.
    snapped = shapely.transform(arr, lambda xy: np.round(xy / snap_deg) * snap_deg)
    broken = ~shapely.is_valid(snapped)
    if broken.any():
        snapped[broken] = shapely.make_valid(snapped[broken])
    out: list[Problem] = []
    for county in sorted(by_county):
        try:
            union = shapely.union_all(snapped[by_county[county]])
        except shapely.errors.GEOSException:
            union = shapely.union_all(arr[by_county[county]], grid_size=snap_deg)
        for part in shapely.get_parts(union).tolist():
            if shapely.get_type_id(part) != 3:  # not a Polygon (a stray line or point)
                continue
            for k in range(shapely.get_num_interior_rings(part)):
                hole = shapely.polygons(shapely.get_interior_ring(part, k))
                where = shapely.point_on_surface(hole)
                lat = float(shapely.get_y(where))
                area = float(shapely.area(hole) * _m2_per_deg2(lat))
                if area <= gap_m2:
                    continue
                # The hole is snapped: its border may sit up to a grid step off the cells'.
                near = tree.query(hole, predicate="dwithin", distance=2 * snap_deg)
                around = sorted(codes[i] for i in near.tolist())
                if not around:
                    continue
                shown = ", ".join(around[:6]) + (" ..." if len(around) > 6 else "")
                out.append(Problem(
                    around[0], "gap",
                    f"a gap of about {area:,.0f} m² in county {county} at "
                    f"{lat:.6f}, {float(shapely.get_x(where)):.6f} (lat, lon), "
                    f"between cells {shown}",
                    tuple(around[1:]),
                ))
    return out


# --- export -------------------------------------------------------------------


def to_feature_collection(
    cells: Iterable[CellRecord], stations: Iterable[StationRecord]
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946) of stations, then cells, ready for json.dump.

    Rings are [lon, lat], closed and counter-clockwise (right-hand rule).
    Orientation is decided here by the ring's signed area rather than by
    shapely's `orient`, so a degenerate ring from the store still exports
    (and `parse_feature_collection` then says what is wrong with it).
    """
    features: list[dict[str, Any]] = []
    for s in stations:
        props: dict[str, Any] = {"kind": "station", "code": s.code, "name": s.name,
                                 "county_code": s.county_code, "station_kind": s.kind}
        if s.duty_phone is not None:
            props["duty_phone"] = s.duty_phone
        if s.county_bureau is not None:
            props["county_bureau"] = s.county_bureau
        geometry = (None if s.location is None
                    else {"type": "Point", "coordinates": [s.location[0], s.location[1]]})
        features.append({"type": "Feature", "id": s.code, "geometry": geometry,
                         "properties": props})
    for c in cells:
        features.append({
            "type": "Feature",
            "id": c.code,
            "geometry": {"type": "Polygon", "coordinates": [_ccw_ring(c.ring)]},
            "properties": {
                "kind": "cell", "code": c.code, "name": c.name,
                "station_code": c.station_code, "village_code": c.village_code,
                "township_code": c.township_code, "county_code": c.county_code,
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _ccw_ring(ring: Sequence[Sequence[float]]) -> list[list[float]]:
    points = [[float(p[0]), float(p[1])] for p in ring]
    if len(points) >= 2 and points[0] != points[-1]:
        points.append(list(points[0]))
    twice_area = sum(x0 * y1 - x1 * y0
                     for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False))
    if twice_area < 0:
        points.reverse()
    return points


def cell_areas_m2(cells: Sequence[CellRecord]) -> list[float]:
    """Approximate area of each cell in m² (NaN for a ring that is not a polygon)."""
    out = [math.nan] * len(cells)
    good: list[int] = []
    points: list[list[tuple[float, float]]] = []
    for i, cell in enumerate(cells):
        closed = _closed_points(cell.ring)
        if closed is not None:
            good.append(i)
            points.append(closed)
    if not good:
        return out
    polygons = shapely.polygons(_rings(points))
    lat = shapely.get_y(shapely.centroid(polygons))
    area = np.abs(shapely.area(polygons)) * _m2_per_deg2(np.nan_to_num(lat))
    for i, a in zip(good, area.tolist(), strict=True):
        out[i] = a
    return out
