"""Missing-child alert rings (寻人): the schedule, and which grid cells each ring covers.

Pure and in memory. A cell is covered by a ring when any part of it lies within the
ring's radius of the last-seen point (its centre, an edge or a corner). Distances are
measured on a local equidistant plane around the point: within 0.5 % at 100 km and
about 2 % at the 500 km limit, always erring outward at the ring's edge by less than a
cell's width at these sizes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from geo.distance import EARTH_RADIUS_M

MAX_RADIUS_M = 500_000.0  # the tracker's ceiling: a province, not the country
MAX_RINGS = 6
MAX_DELAY_S = 24 * 3600


@dataclass(frozen=True)
class Ring:
    """One widening of an alert: everyone within `radius_m`, `delay_s` after issuing."""

    radius_m: float
    delay_s: int


# 1 km at once, 10 km at +30 min, 100 km at +60 min (issue 13).
DEFAULT_RINGS = (Ring(1_000.0, 0), Ring(10_000.0, 1_800), Ring(100_000.0, 3_600))


def ring_problems(rings: Sequence[Ring]) -> list[str]:
    """What is wrong with a ring schedule, in words for the officer (empty when sound).

    Radii grow strictly and stay within (0, 500 km]; delays never go back in time and
    stay within a day; the first ring may wait, but at most six rings.
    """
    problems: list[str] = []
    if not rings:
        return ["give at least one ring"]
    if len(rings) > MAX_RINGS:
        problems.append(f"at most {MAX_RINGS} rings, got {len(rings)}")
    for n, ring in enumerate(rings, start=1):
        if not (ring.radius_m > 0 and math.isfinite(ring.radius_m)):
            problems.append(f"ring {n}: the radius must be more than 0 km")
        elif ring.radius_m > MAX_RADIUS_M:
            problems.append(f"ring {n}: the radius may be at most {MAX_RADIUS_M / 1000:g} km, "
                            f"got {ring.radius_m / 1000:g} km")
        if not 0 <= ring.delay_s <= MAX_DELAY_S:
            problems.append(f"ring {n}: the delay must be between 0 and 1440 minutes")
    for n, (before, after) in enumerate(zip(rings, rings[1:], strict=False), start=2):
        if after.radius_m <= before.radius_m:
            problems.append(f"ring {n}: each ring must be wider than the one before")
        if after.delay_s < before.delay_s:
            problems.append(f"ring {n}: each ring must start no earlier than the one before")
    return problems


def _plane(lat0: float, lon0: float, points: np.ndarray) -> np.ndarray:
    """(lon, lat) points → metres east and north of (lat0, lon0), on a local plane."""
    k = EARTH_RADIUS_M * math.pi / 180
    x = (points[..., 0] - lon0) * k * np.cos(np.radians(points[..., 1]))
    y = (points[..., 1] - lat0) * k
    return np.stack([x, y], axis=-1)


class RingCoverage:
    """The cells of a grid as polygons, ready to answer "which cells lie within r of p"."""

    def __init__(self, cells: Mapping[str, Sequence[Sequence[float]]]) -> None:
        self.codes = np.array(list(cells), dtype=object)
        self._rings = [np.asarray(ring, dtype=float)[:, :2] for ring in cells.values()]
        boxes = [(r[:, 0].min(), r[:, 1].min(), r[:, 0].max(), r[:, 1].max())
                 if len(r) else (0.0, 0.0, 0.0, 0.0) for r in self._rings]
        self._boxes = np.array(boxes, dtype=float).reshape(-1, 4)

    def covered(self, lat: float, lon: float, radius_m: float) -> set[str]:
        """Codes of the cells any part of which lies within `radius_m` of (lat, lon)."""
        if not len(self.codes):
            return set()
        # A box test in degrees first (generous), then exact distances on the plane.
        dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.05
        coslat = max(math.cos(math.radians(min(89.0, abs(lat) + dlat))), 1e-6)
        dlon = dlat / coslat
        b = self._boxes
        near = np.nonzero((b[:, 2] >= lon - dlon) & (b[:, 0] <= lon + dlon)
                          & (b[:, 3] >= lat - dlat) & (b[:, 1] <= lat + dlat))[0]
        if not len(near):
            return set()
        polygons = shapely.polygons([_plane(lat, lon, self._rings[i]) for i in near])
        inside = shapely.dwithin(polygons, shapely.Point(0.0, 0.0), radius_m)
        return {str(code) for code in self.codes[near[inside]]}

    def widening(self, lat: float, lon: float, radii: Iterable[float]) -> list[set[str]]:
        """For each radius in turn, the cells it adds to those of the rings before it."""
        seen: set[str] = set()
        out: list[set[str]] = []
        for radius in radii:
            cells = self.covered(lat, lon, radius) - seen
            seen |= cells
            out.append(cells)
        return out
