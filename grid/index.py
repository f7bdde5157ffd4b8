"""In-memory spatial index: which grid cell (网格) contains a point.

Designed for 1,000,000 cells, >= 100,000 single-point lookups a second from
Python. Measured on the 2-core target with `bench/locate.py` (jittered quads):

- `STRtree.query(Point, predicate="intersects")` per call: ~11 us, most of it
  creating the Point and crossing into GEOS; about 85,000 calls/s, too slow.
- A uniform-grid bucket dict (integer key from the scaled coordinates) to a
  few candidate cells, then a ray cast over the cell's coordinates fetched as
  Python floats: 3-5 us a call, 200,000-300,000 calls/s. That is the fast
  path below.

Cells of very different sizes (a 200 m urban grid next to a 5 km rural
village) would make one bucket size either crowded or memory hungry, so each
cell goes to a level whose bucket side is between one and two times its own
extent: every cell sits in at most 2x2 buckets and every bucket holds a
handful of cells.

The answer is exact, the same as GEOS: the ray cast is used only when the
point is clearly inside or outside (more than `_EDGE_EPS` degrees from every
edge crossing); near an edge, on a vertex, or in a cell that overlaps another
(bad data), the point goes to GEOS through the STRtree. A point on a shared
border belongs to the cell with the smallest code, as in `locate_many`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
import numpy.typing as npt
import shapely

from geo.distance import EARTH_RADIUS_M

_M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0
# ~0.1 mm: far above the ray cast's rounding error (~1e-13 degrees), far below
# any real border accuracy. Closer than this to an edge, GEOS decides.
_EDGE_EPS = 1e-9
# Bucket keys are ix * _KEY_SHIFT + iy; iy stays far below it.
_KEY_SHIFT = 1 << 32
# Bucket boxes are grown by this much when deciding which cells they hold, so
# that rounding in the key arithmetic can never put a point in a bucket that
# misses its cell.
_BOX_MARGIN = 1e-9

_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]
# (x origin, y origin, 1 / bucket side, bucket key -> candidate cell indices)
_Level = tuple[float, float, float, dict[int, tuple[int, ...]]]


class CellIndex:
    """Point -> grid cell code over cell polygons given as (lon, lat) rings in WGS-84."""

    __slots__ = (
        "_bounds",
        "_codes",
        "_coords",
        "_geoms",
        "_levels",
        "_offsets",
        "_overlapping",
        "_tree",
    )

    def __init__(
        self,
        codes: tuple[str, ...],
        geoms: npt.NDArray[np.object_],
        tree: shapely.STRtree,
        coords: _FloatArray,
        offsets: list[int],
        levels: list[_Level],
        overlapping: frozenset[int],
    ) -> None:
        # Use `CellIndex.build`; this only stores what it computed.
        self._codes = codes
        self._geoms = geoms
        self._tree = tree
        self._coords = coords
        self._offsets = offsets
        self._levels = levels
        self._overlapping = overlapping
        if len(codes):
            b = shapely.total_bounds(geoms)
            self._bounds = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
        else:
            # NaN bounds: every comparison fails, so nothing is ever found.
            self._bounds = (math.nan, math.nan, math.nan, math.nan)

    @classmethod
    def build(cls, cells: Iterable[tuple[str, Sequence[Sequence[float]]]]) -> CellIndex:
        """Index cells given as (code, exterior ring of (lon, lat) pairs), open or closed.

        Raises ValueError for a duplicate code or a ring that is not a valid polygon.
        """
        codes: list[str] = []
        counts: list[int] = []
        flat: list[float] = []
        for code, ring in cells:
            before = len(flat)
            flat.extend(chain.from_iterable(ring))
            n = len(ring)
            if len(flat) - before != 2 * n:
                raise ValueError(f"cell {code!r}: every ring point must be (lon, lat)")
            if n and (ring[0][0] != ring[-1][0] or ring[0][1] != ring[-1][1]):
                flat.extend((ring[0][0], ring[0][1]))
                n += 1
            if n < 4:
                raise ValueError(f"cell {code!r}: a ring needs at least 3 distinct points")
            codes.append(code)
            counts.append(n)
        xy = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
        del flat
        if not np.isfinite(xy).all():
            raise ValueError("cell rings must have finite coordinates")

        # Order cells by code: then "smallest code" is "smallest index", which
        # both the fast path and the vectorised STRtree path can use directly.
        order = sorted(range(len(codes)), key=codes.__getitem__)
        sorted_codes = tuple(codes[i] for i in order)
        for a, b in zip(sorted_codes, sorted_codes[1:], strict=False):
            if a == b:
                raise ValueError(f"duplicate cell code {a!r}")
        count_arr = np.asarray(counts, dtype=np.int64)
        rank = np.empty(len(order), dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int64)
        cell_of_vertex = np.repeat(rank, count_arr)
        vertex_order = np.argsort(cell_of_vertex, kind="stable")
        xy = xy[vertex_order]
        count_arr = count_arr[np.asarray(order, dtype=np.int64)]
        ring_of_vertex = cell_of_vertex[vertex_order]

        geoms = shapely.polygons(shapely.linearrings(xy, indices=ring_of_vertex))
        if len(sorted_codes):
            invalid = np.flatnonzero(~shapely.is_valid(geoms))
            if len(invalid):
                bad = ", ".join(sorted_codes[i] for i in invalid[:5].tolist())
                raise ValueError(f"{len(invalid)} cell(s) are not valid polygons: {bad}")
        bounds = shapely.bounds(geoms).reshape(-1, 4)

        # Per cell: bounding box, then the ring, in one flat array; a lookup
        # slices it and turns it into Python floats in one call.
        starts = np.zeros(len(count_arr) + 1, dtype=np.int64)
        np.cumsum(4 + 2 * count_arr, out=starts[1:])
        coords = np.empty(int(starts[-1]), dtype=np.float64)
        vstart = np.cumsum(count_arr) - count_arr
        for k in range(4):
            coords[starts[:-1] + k] = bounds[:, k]
        # Scatter each vertex to its slot: after its cell's 4 bounds values.
        within = np.arange(len(xy), dtype=np.int64) - np.repeat(vstart, count_arr)
        slot = np.repeat(starts[:-1] + 4, count_arr) + 2 * within
        coords[slot] = xy[:, 0]
        coords[slot + 1] = xy[:, 1]

        tree = shapely.STRtree(geoms)
        overlapping = _overlapping_cells(tree, geoms)
        levels = _build_levels(geoms, bounds)
        return cls(sorted_codes, geoms, tree, coords, starts.tolist(), levels, overlapping)

    def __len__(self) -> int:
        return len(self._codes)

    @property
    def codes(self) -> tuple[str, ...]:
        """All cell codes, sorted."""
        return self._codes

    def locate(self, lat: float, lon: float) -> str | None:
        """Code of the cell containing the point (borders count; smallest code wins), or None."""
        minx, miny, maxx, maxy = self._bounds
        # Also rejects NaN, which fails every comparison.
        if not (minx <= lon <= maxx and miny <= lat <= maxy):
            return None
        coords = self._coords
        offsets = self._offsets
        for x0, y0, inv, buckets in self._levels:
            candidates = buckets.get(int((lon - x0) * inv) * _KEY_SHIFT + int((lat - y0) * inv))
            if candidates is None:
                continue
            for c in candidates:
                # Inlined ray cast: a function call per candidate costs ~15 %.
                seg = coords[offsets[c] : offsets[c + 1]].tolist()
                if lon < seg[0] or lat < seg[1] or lon > seg[2] or lat > seg[3]:
                    continue
                inside = False
                xi = seg[4]
                yi = seg[5]
                for k in range(6, len(seg), 2):
                    xj = seg[k]
                    yj = seg[k + 1]
                    if yj == lat:
                        # On a vertex's latitude: horizontal edges and vertices
                        # are where the crossing rule cannot see the border.
                        return self._locate_exact(lat, lon)
                    if (yi > lat) != (yj > lat):
                        d = lon - (xi + (lat - yi) * (xj - xi) / (yj - yi))
                        if -_EDGE_EPS < d < _EDGE_EPS:
                            return self._locate_exact(lat, lon)
                        if d < 0:
                            inside = not inside
                    xi = xj
                    yi = yj
                if inside:
                    if c in self._overlapping:
                        return self._locate_exact(lat, lon)
                    # Strictly inside a cell that overlaps no other: the only answer.
                    return self._codes[c]
        return None

    def _locate_exact(self, lat: float, lon: float) -> str | None:
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        return self._codes[int(hits.min())]

    def locate_many(self, lats: npt.ArrayLike, lons: npt.ArrayLike) -> list[str | None]:
        """`locate` for many points at once, through the STRtree in one GEOS call."""
        lat_arr = np.asarray(lats, dtype=np.float64).ravel()
        lon_arr = np.asarray(lons, dtype=np.float64).ravel()
        if lat_arr.shape != lon_arr.shape:
            raise ValueError(f"{lat_arr.size} latitudes but {lon_arr.size} longitudes")
        out: list[str | None] = [None] * lat_arr.size
        if not len(self._codes) or not lat_arr.size:
            return out
        # NaN makes an empty point, which matches nothing: None, as in locate().
        points = shapely.points(lon_arr, lat_arr)
        pairs = self._tree.query(points, predicate="intersects")
        if pairs.shape[1] == 0:
            return out
        # Smallest cell index (= smallest code) per point.
        order = np.lexsort((pairs[1], pairs[0]))
        pts = pairs[0][order]
        cells = pairs[1][order]
        first = np.flatnonzero(np.r_[True, pts[1:] != pts[:-1]])
        codes = self._codes
        for p, c in zip(pts[first].tolist(), cells[first].tolist(), strict=True):
            out[p] = codes[c]
        return out

    def nearest(self, lat: float, lon: float, max_distance_m: float) -> tuple[str, float] | None:
        """The nearest cell within `max_distance_m` metres and its distance (0 inside), or None.

        Distances use a local equirectangular projection at `lat`: fine at
        the scale of cells and alert rings. Ties go to the smallest code.
        """
        if not max_distance_m >= 0:
            raise ValueError(f"max_distance_m must be >= 0, got {max_distance_m!r}")
        if not (math.isfinite(lat) and math.isfinite(lon)) or not len(self._codes):
            return None
        code = self.locate(lat, lon)
        if code is not None:
            return code, 0.0
        point = shapely.Point(lon, lat)
        # The nearest cell in plain degrees is no farther in metres than its
        # degree distance (cos(lat) <= 1 only shrinks east-west), so it bounds
        # the search; every cell within that many metres is within
        # metres / (cos(lat) * m per degree) degrees.
        _, deg = self._tree.query_nearest(point, return_distance=True, all_matches=False)
        limit_m = min(float(deg[0]) * _M_PER_DEG, max_distance_m)
        cos_lat = max(math.cos(math.radians(lat)), 1e-9)
        radius_deg = limit_m / (cos_lat * _M_PER_DEG) * (1 + 1e-9) + 1e-12
        candidates = self._tree.query(point, predicate="dwithin", distance=radius_deg)
        if len(candidates) == 0:
            return None
        candidates = np.sort(candidates)
        scale = np.array([cos_lat * _M_PER_DEG, _M_PER_DEG])
        origin = np.array([lon, lat])
        local = shapely.transform(self._geoms[candidates], lambda xy: (xy - origin) * scale)
        dist = shapely.distance(local, shapely.Point(0.0, 0.0))
        best = int(np.argmin(dist))  # first minimum: smallest code on a tie
        best_m = float(dist[best])
        if best_m > max_distance_m:
            return None
        return self._codes[int(candidates[best])], best_m


def _overlapping_cells(tree: shapely.STRtree, geoms: npt.NDArray[np.object_]) -> frozenset[int]:
    """Cells whose interior meets another cell's; lookups in them go to GEOS."""
    if len(geoms) < 2:
        return frozenset()
    # Interiors meet when one polygon partly overlaps or contains another.
    found: set[int] = set()
    for predicate in ("overlaps", "contains"):
        pairs = tree.query(geoms, predicate=predicate)
        other = pairs[0] != pairs[1]
        found.update(pairs[0][other].tolist())
        found.update(pairs[1][other].tolist())
    return frozenset(found)


def _build_levels(geoms: npt.NDArray[np.object_], bounds: _FloatArray) -> list[_Level]:
    """Bucket dicts, one per size class of cells, most populated first."""
    if not len(geoms):
        return []
    extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    # Bucket side for level L is base * 2**L, with base chosen so that the
    # usual cells (up to the 90th percentile of extent) share one level.
    base = float(np.quantile(extent, 0.9))
    level_of_cell = np.ceil(np.log2(np.maximum(extent, base * 2.0**-40) / base)).astype(np.int64)
    minx = float(bounds[:, 0].min())
    miny = float(bounds[:, 1].min())
    built: list[tuple[int, _Level]] = []
    for level in np.unique(level_of_cell).tolist():
        members = np.flatnonzero(level_of_cell == level)
        step = base * 2.0**level
        inv = 1.0 / step
        # Origins two buckets below the data, so every real key is >= 1 and
        # truncation toward zero behaves like floor for every indexed point.
        x0 = minx - 2.0 * step
        y0 = miny - 2.0 * step
        buckets = _fill_buckets(geoms, bounds, members, x0, y0, inv, step)
        built.append((len(members), (x0, y0, inv, buckets)))
    built.sort(key=lambda item: -item[0])
    return [lvl for _, lvl in built]


def _fill_buckets(
    geoms: npt.NDArray[np.object_],
    bounds: _FloatArray,
    members: _IntArray,
    x0: float,
    y0: float,
    inv: float,
    step: float,
) -> dict[int, tuple[int, ...]]:
    b = bounds[members]
    # The same arithmetic as locate(); rounding is monotonic, so a point inside
    # a cell's bounding box always lands in one of that cell's buckets.
    ix0 = ((b[:, 0] - x0) * inv).astype(np.int64)
    ix1 = ((b[:, 2] - x0) * inv).astype(np.int64)
    iy0 = ((b[:, 1] - y0) * inv).astype(np.int64)
    iy1 = ((b[:, 3] - y0) * inv).astype(np.int64)
    ny = iy1 - iy0 + 1
    per_cell = (ix1 - ix0 + 1) * ny
    cell = np.repeat(members, per_cell)
    k = np.arange(len(cell), dtype=np.int64) - np.repeat(np.cumsum(per_cell) - per_cell, per_cell)
    ny_rep = np.repeat(ny, per_cell)
    kx = np.repeat(ix0, per_cell) + k // ny_rep
    ky = np.repeat(iy0, per_cell) + k % ny_rep
    del k, ny_rep
    # Keep a (cell, bucket) pair only if the polygon meets the bucket's box:
    # a jittered quad's bounding box overlaps many more buckets than the quad.
    boxes = shapely.box(
        x0 + kx * step - _BOX_MARGIN,
        y0 + ky * step - _BOX_MARGIN,
        x0 + (kx + 1) * step + _BOX_MARGIN,
        y0 + (ky + 1) * step + _BOX_MARGIN,
    )
    keep = shapely.intersects(geoms[cell], boxes)
    del boxes
    cell = cell[keep]
    keys = kx[keep] * _KEY_SHIFT + ky[keep]
    order = np.lexsort((cell, keys))
    keys = keys[order]
    cell = cell[order]
    if not len(keys):
        return {}
    breaks = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.r_[0, breaks].tolist()
    ends = np.r_[breaks, len(keys)].tolist()
    cell_list = cell.tolist()
    return {
        key: tuple(cell_list[s:e])
        for key, s, e in zip(keys[np.r_[0, breaks]].tolist(), starts, ends, strict=True)
    }
