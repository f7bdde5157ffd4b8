"""An in-memory snapshot of the grid: cells, stations and the spatial index.

API processes and workers each hold one, rebuilt when the grid's version
changes (see gateway/gridcache.py). Placing a report is pure and in memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from grid.alerts import RingCoverage
from grid.index import CellIndex


@dataclass(frozen=True)
class CellInfo:
    code: str
    name: str
    station_code: str
    county_code: str
    neighbours: tuple[str, ...] = ()


@dataclass(frozen=True)
class StationInfo:
    code: str
    name: str
    county_code: str
    kind: str
    duty_phone: str | None
    active: bool = True  # a deactivated station takes no transfers (and holds no cells)


@dataclass(frozen=True)
class Placement:
    """Which cell a report is in, which station takes it, and how that was decided."""

    cell_code: str | None
    station_code: str
    method: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Village:
    """A village or community (村/社区) of the grid: its name and the middle of its cells."""

    code: str
    name: str
    lat: float
    lon: float


# Metres in a degree of latitude (a sphere of the mean Earth radius).
_M_PER_DEG = 6_371_008.8 * math.pi / 180


def cell_size_m(ring: list[tuple[float, float]]) -> float:
    """The side of a square of the cell's area, in metres: how big a cell is, for
    judging whether a GPS fix is precise enough to name it (shoelace on a local plane)."""
    if len(ring) < 3:
        return 0.0
    lat0 = math.radians(sum(lat for _, lat in ring) / len(ring))
    kx, ky = _M_PER_DEG * math.cos(lat0), _M_PER_DEG
    twice = 0.0
    for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]], strict=True):
        twice += (x1 * kx) * (y2 * ky) - (x2 * kx) * (y1 * ky)
    return math.sqrt(abs(twice) / 2)



class GridSnapshot:
    def __init__(
        self,
        cells: Iterable[tuple[CellInfo, list[tuple[float, float]]]],
        stations: Iterable[StationInfo],
        villages: Iterable[Village] = (),
    ) -> None:
        self.villages = tuple(villages)
        cell_list = list(cells)
        self.cells: dict[str, CellInfo] = {info.code: info for info, _ in cell_list}
        self.stations: dict[str, StationInfo] = {s.code: s for s in stations}
        self.index = CellIndex.build((info.code, ring) for info, ring in cell_list)
        self.rings: dict[str, list[tuple[float, float]]] = {info.code: ring
                                                            for info, ring in cell_list}
        self._coverage: RingCoverage | None = None
        self.cell_size_m: dict[str, float] = {info.code: cell_size_m(ring)
                                              for info, ring in cell_list}
        # The county duty desk takes what no cell can place.
        self.county_desk: dict[str, str] = {
            s.county_code: s.code for s in self.stations.values() if s.kind == "county_desk"
        }

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def coverage(self) -> RingCoverage:
        """The cells as polygons for alert rings, built on first use."""
        if self._coverage is None:
            self._coverage = RingCoverage(self.rings)
        return self._coverage

    def centre(self, code: str) -> tuple[float, float]:
        """(lat, lon) of the middle of a cell's bounding box."""
        ring = self.rings[code]
        lons = [p[0] for p in ring]
        lats = [p[1] for p in ring]
        return (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2

    def place(
        self,
        *,
        lat: float | None,
        lon: float | None,
        grid_code: str | None,
        home_cell: str | None,
        county_code: str | None,
        nearest_max_m: float,
        precision_m: float | None = None,
    ) -> Placement | None:
        """Place a report: GPS, then grid code, then the reporter's home cell.

        A point outside every cell goes to the nearest cell within
        `nearest_max_m`, else to the county duty desk; both are flagged for
        review. A GPS fix whose `precision_m` is worse than its cell's size is
        not exact: it is flagged, and a grid code the reporter named wins over
        it. None only when the grid has nothing at all to route to.
        """
        if lat is not None and lon is not None:
            code = self.index.locate(lat, lon)
            if code is not None:
                imprecise = precision_m is not None and precision_m > self.cell_size_m[code]
                disagree = grid_code is not None and grid_code in self.cells and grid_code != code
                if disagree and imprecise:
                    # A fix vaguer than the cell cannot overrule the cell the reporter named.
                    assert grid_code is not None
                    return self._to_cell(grid_code, "grid_code",
                                         ("gps_grid_code_disagree", "gps_imprecise_grid_code"))
                # The GPS wins, but an officer is shown that the reporter named another
                # cell, or that the fix could as well be in a neighbouring one.
                flags = (("gps_grid_code_disagree",) if disagree else ()) + (
                    ("gps_imprecise",) if imprecise else ())
                return self._to_cell(code, "gps", flags)
            near = self.index.nearest(lat, lon, nearest_max_m)
            if near is not None:
                return self._to_cell(near[0], "gps", ("outside_grid_nearest_cell",))
        if grid_code is not None and grid_code in self.cells:
            return self._to_cell(grid_code, "grid_code")
        if home_cell is not None and home_cell in self.cells:
            flags = ("gps_outside_grid",) if lat is not None else ()
            return self._to_cell(home_cell, "reporter_home_cell", flags)
        return self._to_county_desk(lat, lon, county_code)

    def _to_cell(self, code: str, method: str, flags: tuple[str, ...] = ()) -> Placement:
        return Placement(code, self.cells[code].station_code, method, flags)

    def _to_county_desk(
        self, lat: float | None, lon: float | None, county_code: str | None
    ) -> Placement | None:
        if county_code is None and lat is not None and lon is not None:
            near = self.index.nearest(lat, lon, math.inf)
            if near is not None:
                county_code = self.cells[near[0]].county_code
        desk = self.county_desk.get(county_code or "")
        if desk is None and self.county_desk:
            # Never leave a report unrouted: any county desk is better than none.
            desk = sorted(self.county_desk.values())[0]
        if desk is None:
            return None
        return Placement(None, desk, "county_default", ("unplaced_review",))
