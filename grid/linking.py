"""Linking reports into one Case: shared identifiers, or the same incident by place and time.

Identifiers (mobile numbers, vehicle plates) found in a report's text are
normalised, then compared only as keyed hashes (HMAC-SHA256), so the clear
values can stay encrypted at rest while reports naming the same number still
meet in an index. The key is the only protection: there are about 10^10
mobile numbers, so an unkeyed hash would be reversed by enumeration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import shapely

from geo.distance import haversine_m

# Mainland mobile numbers: 1[3-9] and nine more digits, optionally after
# +86 / 0086 / 86, with single spaces or hyphens anywhere inside (people
# write 138 0013 8000 and 139-1234-5678). A digit right before or after means
# it is part of something longer (an ID card or bank number), not a phone.
_PHONE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?(1[3-9](?:[ -]?\d){9})(?!\d)")

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Separators seen between the issuing-office letter and the serial. NFKC has
# already turned full-width forms into these.
_PLATE_SEP = "·•・‧. -"
# Serial: six characters for new-energy plates (a letter first, e.g. D12345,
# or D/F last on large vehicles), four plus a special-use character
# (police 警, learner 学, trailer 挂, embassy 使, consulate 领), or five.
# Tried in that order; the look-ahead keeps a longer run from matching a part.
_PLATE = re.compile(
    rf"([{_PROVINCES}])([A-Z])[{re.escape(_PLATE_SEP)}]?"
    r"([A-HJ-K][A-Z0-9]{5}(?![A-Z0-9])|[A-Z0-9]{5}[DF](?![A-Z0-9])"
    r"|[A-Z0-9]{4}[使领警学挂]|[A-Z0-9]{5}(?![A-Z0-9]))"
)


def _prepare(text: str) -> str:
    # NFKC folds full-width digits, letters and punctuation (１, Ｃ, －, ＋).
    return unicodedata.normalize("NFKC", text).upper()


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def normalise_phone(text: str) -> tuple[str, ...]:
    """Mainland mobile numbers in `text` as +86 and 11 digits, in order, without repeats."""
    found = [
        "+86" + m.group(1).replace(" ", "").replace("-", "")
        for m in _PHONE.finditer(_prepare(text))
    ]
    return _unique(found)


def normalise_plate(text: str) -> tuple[str, ...]:
    """Vehicle plates in `text`, upper case without separators (云C12345), in order."""
    found = ["".join(m.groups()) for m in _PLATE.finditer(_prepare(text))]
    return _unique(found)


def identifiers(text: str) -> frozenset[str]:
    """The typed, normalised identifiers in `text`: `phone:+86…` and `plate:…`."""
    return frozenset(
        [f"phone:{p}" for p in normalise_phone(text)]
        + [f"plate:{p}" for p in normalise_plate(text)]
    )


# 128 bits: a shorter key would be the weak part of the scheme.
MIN_KEY_BYTES = 16


def keyed(identifier: str, key: bytes) -> str:
    """HMAC-SHA256 (hex) of a normalised identifier under the linking key."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the linking key must be at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()


def link_keys(text: str, key: bytes) -> frozenset[str]:
    """Keyed hashes of every identifier in `text`: what is stored and indexed for linking."""
    return frozenset(keyed(i, key) for i in identifiers(text))


# ~1 cm at these latitudes: absorbs rounding where two cells were digitised
# along the same border, far below any real gap between villages.
DEFAULT_TOLERANCE_DEG = 1e-7


def neighbours(
    cells: Mapping[str, Sequence[tuple[float, float]]],
    tolerance_deg: float = DEFAULT_TOLERANCE_DEG,
) -> dict[str, frozenset[str]]:
    """For each cell code, the codes of the cells that touch or overlap it.

    Cells are (lon, lat) exterior rings, open or closed. Touching includes
    sharing only a corner. A pair within `tolerance_deg` of each other counts:
    that is the STRtree "intersects" on cells buffered by the tolerance.
    About a second for 100,000 cells.
    """
    if not tolerance_deg >= 0:
        raise ValueError(f"tolerance_deg must be >= 0, got {tolerance_deg!r}")
    codes = list(cells)
    out: dict[str, frozenset[str]] = dict.fromkeys(codes, frozenset())
    if not codes:
        return out
    counts: list[int] = []
    flat: list[float] = []
    for code in codes:
        ring = cells[code]
        if len(ring) < 3:
            raise ValueError(f"cell {code!r}: a ring needs at least 3 points")
        before = len(flat)
        flat.extend(chain.from_iterable(ring))
        if len(flat) - before != 2 * len(ring):
            raise ValueError(f"cell {code!r}: every ring point must be (lon, lat)")
        counts.append(len(ring))
    xy = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
    ring_of = np.repeat(np.arange(len(codes)), counts)
    # A LinearRing closes itself when the last point differs from the first.
    geoms = shapely.polygons(shapely.linearrings(xy, indices=ring_of))
    tree = shapely.STRtree(geoms)
    # Candidates from bounding boxes grown by the tolerance, then the exact
    # test: "intersects" (prepared, fast) and "dwithin" only for the few
    # pairs that do not intersect. This is "intersects on cells buffered by
    # the tolerance" without building buffers; a plain dwithin query is ~3x slower.
    bounds = shapely.bounds(geoms)
    boxes = shapely.box(
        bounds[:, 0] - tolerance_deg,
        bounds[:, 1] - tolerance_deg,
        bounds[:, 2] + tolerance_deg,
        bounds[:, 3] + tolerance_deg,
    )
    pairs = tree.query(boxes)
    # Each pair once (the query finds both orders); mirrored again below.
    pairs = pairs[:, pairs[0] < pairs[1]]
    first, second = geoms[pairs[0]], geoms[pairs[1]]
    near = shapely.intersects(first, second)
    rest = np.flatnonzero(~near)
    if len(rest):
        near[rest] = shapely.dwithin(first[rest], second[rest], tolerance_deg)
    pairs = pairs[:, near]
    # Both directions: tested once, so symmetric whatever GEOS rounding does.
    src = np.concatenate([pairs[0], pairs[1]])
    dst = np.concatenate([pairs[1], pairs[0]])
    if not len(src):
        return out
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
    ends = np.r_[starts[1:], len(src)]
    code_arr = np.asarray(codes, dtype=object)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        out[codes[int(src[s])]] = frozenset(code_arr[dst[s:e]].tolist())
    return out


# Which categories can describe the same incident. Two witnesses of one
# incident often file it differently (a child taken from a market is CHILD to
# one, ORIGIN or ADOPT to another); a woman sold into marriage and forced
# labour are another family. Categories not listed are their own group.
CATEGORY_GROUPS: Mapping[str, str] = {
    "CHILD": "child", "ORIGIN": "child", "ADOPT": "child", "BIRTH": "child",
    "ABUSE": "child",
    "WOMAN": "exploitation", "LABOUR": "exploitation",
}

# The ground one incident covers (a doorway and the van outside, a bus stop
# and the lane behind it): two exact points further apart than this plus both
# precisions are two incidents.
BASE_RADIUS_M = 200.0
# Never more than this, however vague the points: beyond it a link would be
# a guess, and a wrong link hides an incident inside another clue.
MAX_LINK_M = 1000.0
# A point less precise than this (a village centroid from a place name, a
# geocoder's town) cannot tell two incidents apart: it links by place only
# to a report in the same grid cell.
COARSE_M = 500.0
# A point with no stated precision (an old record) is taken as a phone fix.
ASSUMED_PRECISION_M = 50.0


def category_group(category: str) -> str:
    """The group a category belongs to for linking; an unlisted category is its own group."""
    return CATEGORY_GROUPS.get(category, category)


@dataclass(frozen=True)
class LinkCandidate:
    """What linking needs to know about a report; `keys` are its `link_keys`.

    `lat`/`lon` are WGS-84 (None when the report has no point: placed by grid
    code or the reporter's home cell); `precision_m` how far the true place
    may be from it; `reporter` identifies who filed it (None: unknown).
    """

    report_id: str
    category: str
    cell_code: str | None
    created_at: dt.datetime
    keys: frozenset[str] = frozenset()
    lat: float | None = None
    lon: float | None = None
    precision_m: float | None = None
    reporter: str | None = None

    @property
    def precise(self) -> bool:
        """True when the point is precise enough to be compared by distance."""
        return self.lat is not None and self.lon is not None and (
            self.precision_m is None or self.precision_m <= COARSE_M)


def link_distance_m(a: LinkCandidate, b: LinkCandidate) -> float:
    """How far apart two precise reports may be and still be one incident.

    BASE_RADIUS_M plus both precisions, at most MAX_LINK_M.
    """
    pa = ASSUMED_PRECISION_M if a.precision_m is None else a.precision_m
    pb = ASSUMED_PRECISION_M if b.precision_m is None else b.precision_m
    return min(MAX_LINK_M, BASE_RADIUS_M + pa + pb)


def same_incident(a: LinkCandidate, b: LinkCandidate, window_s: float) -> str | None:
    """Why two reports are one incident ("same_identifier", "same_place",
    "same_cell"), or None. The rule, written out in docs/linking.md:

    1. A shared phone number or plate (keyed hash) links, across categories,
       places and with no time limit: the same number in a child-abduction
       clue and, months later, in a forced-labour clue is exactly the pattern
       investigators need to see.
    2. Otherwise all of:
       - the same category group (CATEGORY_GROUPS); from the same reporter,
         the same category: a reporter who files a second report under
         another category is telling of a second incident;
       - at most `window_s` seconds apart (inclusive);
       - the same place: when both points are precise (COARSE_M), at most
         `link_distance_m` apart; when either has no point or only a coarse
         one, the same grid cell.
    """
    if window_s < 0:
        raise ValueError(f"window_s must be >= 0, got {window_s!r}")
    if a.report_id == b.report_id:
        return None
    if a.keys & b.keys:
        return "same_identifier"
    if category_group(a.category) != category_group(b.category):
        return None
    if a.reporter is not None and a.reporter == b.reporter and a.category != b.category:
        return None
    if abs((a.created_at - b.created_at).total_seconds()) > window_s:
        return None
    if a.precise and b.precise and a.lat is not None and a.lon is not None \
            and b.lat is not None and b.lon is not None:  # precise implies the point
        apart = haversine_m(a.lat, a.lon, b.lat, b.lon)
        return "same_place" if apart <= link_distance_m(a, b) else None
    if a.cell_code is not None and a.cell_code == b.cell_code:
        return "same_cell"
    return None
