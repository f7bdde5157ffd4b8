"""In-memory spatial index: which grid cell (网格) contains a point.

Designed for 1,000,000 cells, >= 100,000 single-point lookups a second from
Python. Measured on the 2-core target with `bench/locate.py` (jittered quads):

- `STRtree.query(Point, predicate="intersects")` per call: ~11 us, most of it
  creating the Point and crossing into GEOS; about 85,000 calls/s, too slow.
- A uniform-grid bucket dict (integer key from the scaled coordinates) to a
  few candidate cells, then a bounding-box test and a ray cast in Python:
  ~5.5 us a call, ~180,000 calls/s (~290,000 with 20,000 cells, which stay
  in the CPU cache); build ~15 s, ~1 GB resident. That is the fast path
  below. What made it fast at a million cells: each bucket's candidate
  entries (cell rank, ring position, bounding box) are copied next to each
  other in one float array, so a lookup is one dict probe, one slice turned
  into Python floats, and one more slice for the ring of the (usually
  single) candidate whose box holds the point; a tuple of cell ids per
  bucket with per-cell arrays was ~20 % slower and ~15 % bigger, from cache
  misses.

Cells of very different sizes (a 200 m urban grid next to a 5 km rural
village) would make one bucket size either crowded or memory hungry, so cells
are split into size levels, each with its own bucket side (the largest cell
extent in the level, levels a factor of 4 apart): every cell sits in at most
2x2 buckets of its level and a bucket holds a handful of cells. A uniform
grid gets one level.

The answer is exact, the same as GEOS, and needs no overlap check at build
time (which cost ~50 s for 1,000,000 cells): candidates are tried in code
order, the first one that strictly contains the point wins within its level,
and other levels are searched only for smaller codes. The ray cast decides
only when the point is clearly inside or outside (more than `_EDGE_EPS`
degrees from every edge crossing); near an edge or on a vertex's latitude the
point goes to GEOS through the STRtree. So a point on a shared border, or in
two overlapping cells (bad data), belongs to the smallest code, as in
`locate_many`.
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
# Size levels are this factor apart; a bucket holds cells of up to 4x4 per side.
_LEVEL_RATIO = 4.0
# Bucket keys are ix * _KEY_SHIFT + iy; iy stays far below it.
_KEY_SHIFT = 1 << 32
# Bucket boxes are grown by this much when deciding which cells they hold, so
# that rounding in the key arithmetic can never put a point in a bucket that
# misses its cell.
_BOX_MARGIN = 1e-9
_PARSE_CHUNK = 1 << 20
# Buckets are filled this many cells at a time (their boxes: ~250 MB a million).
_CELL_CHUNK = 1 << 16

_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]
# (x origin, y origin, 1 / bucket side, bucket key -> where its candidates'
# entries are in the heads array: start << _LEN_BITS | length)
_Level = tuple[float, float, float, dict[int, int]]
_LEN_BITS = 32
_LEN_MASK = (1 << _LEN_BITS) - 1
# A candidate's entry in a bucket: rank (cell index in code order), where its
# ring starts in the rings array, the ring's length, min lon, min lat, max
# lon, max lat. Entries are copied into every bucket the cell meets, so one
# slice fetches a bucket; rings (x0, y0, ..., xn, yn) are stored once.
_HEAD = 7


class CellIndex:
    """Point -> grid cell code over cell polygons given as (lon, lat) rings in WGS-84."""

    __slots__ = ("_bounds", "_codes", "_geoms", "_heads", "_levels", "_rings", "_tree")

    def __init__(
        self,
        codes: tuple[str, ...],
        geoms: npt.NDArray[np.object_],
        tree: shapely.STRtree,
        rings: _FloatArray,
        heads: _FloatArray,
        levels: list[_Level],
    ) -> None:
        # Use `CellIndex.build`; this only stores what it computed.
        self._codes = codes
        self._geoms = geoms
        self._tree = tree
        self._rings = rings
        self._heads = heads
        self._levels = levels
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
        chunks: list[_FloatArray] = []
        flat: list[float] = []
        for code, ring in cells:
            if len(flat) >= _PARSE_CHUNK:
                # A list of 10 million distinct floats is ~320 MB; an array, 80.
                chunks.append(np.asarray(flat, dtype=np.float64))
                flat.clear()
            before = len(flat)
            try:
                flat.extend(chain.from_iterable(ring))
            except TypeError:
                raise ValueError(f"cell {code!r}: ring must be a sequence of (lon, lat)") from None
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
        chunks.append(np.asarray(flat, dtype=np.float64))
        del flat
        xy = np.concatenate(chunks).reshape(-1, 2)
        del chunks
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
        del cell_of_vertex, vertex_order, rank
        vstart = np.cumsum(count_arr) - count_arr

        geoms = _polygons(xy, count_arr, vstart)
        if len(sorted_codes):
            invalid = np.flatnonzero(~shapely.is_valid(geoms))
            if len(invalid):
                bad = ", ".join(sorted_codes[i] for i in invalid[:5].tolist())
                raise ValueError(f"{len(invalid)} cell(s) are not valid polygons: {bad}")
        bounds = shapely.bounds(geoms).reshape(-1, 4)

        # The rings as one flat array of floats, already in code order.
        rings = xy.ravel()
        del xy
        tree = shapely.STRtree(geoms)
        heads, levels = _build_levels(geoms, bounds, 2 * vstart, 2 * count_arr)
        return cls(sorted_codes, geoms, tree, rings, heads, levels)

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
        heads = self._heads
        rings = self._rings
        best = math.inf
        for x0, y0, inv, buckets in self._levels:
            where = buckets.get(int((lon - x0) * inv) * _KEY_SHIFT + int((lat - y0) * inv))
            if where is None:
                continue
            start = where >> _LEN_BITS
            h = heads[start : start + (where & _LEN_MASK)].tolist()
            for i in range(0, len(h), _HEAD):
                rank = h[i]
                if rank > best:
                    # Entries are in code order: no smaller code left here.
                    break
                if lon < h[i + 3] or lat < h[i + 4] or lon > h[i + 5] or lat > h[i + 6]:
                    continue
                s = int(h[i + 1])
                ring = rings[s : s + int(h[i + 2])].tolist()
                # Ray cast, inlined: a function call per cell costs ~15 %.
                inside = False
                xi = ring[0]
                yi = ring[1]
                for k in range(2, len(ring), 2):
                    xj = ring[k]
                    yj = ring[k + 1]
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
                    # Strictly inside; any smaller code covering the point was
                    # tried before (this level) or is still looked for (others).
                    best = rank
                    break
        return self._codes[int(best)] if best != math.inf else None

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


def _polygons(
    xy: _FloatArray, counts: _IntArray, vstart: _IntArray
) -> npt.NDArray[np.object_]:
    """GEOS polygons from concatenated closed rings, a chunk of cells at a time."""
    # All rings at once would hold a second full copy of the coordinates as
    # GEOS linear rings until the polygons are made (~300 MB per million).
    parts: list[npt.NDArray[np.object_]] = [np.empty(0, dtype=object)]
    for lo in range(0, len(counts), _CELL_CHUNK):
        hi = min(lo + _CELL_CHUNK, len(counts))
        first = int(vstart[lo])
        last = int(vstart[hi - 1] + counts[hi - 1])
        ring_index = np.repeat(np.arange(hi - lo, dtype=np.int64), counts[lo:hi])
        rings = shapely.linearrings(xy[first:last], indices=ring_index)
        parts.append(shapely.polygons(rings))
    return np.concatenate(parts)


def _build_levels(
    geoms: npt.NDArray[np.object_],
    bounds: _FloatArray,
    ring_start: _IntArray,
    ring_len: _IntArray,
) -> tuple[_FloatArray, list[_Level]]:
    """Bucket dicts, one per size level of cells (most populated first), and their heads."""
    if not len(geoms):
        return np.empty(0, dtype=np.float64), []
    extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    # Greedy from the largest cell: a level takes every extent in (top/4, top]
    # and the next level starts at the largest extent left, so level edges
    # fall in gaps of the size distribution.
    ascending = np.sort(extent)
    tops: list[float] = []
    remaining = len(ascending)
    while remaining:
        top = float(ascending[remaining - 1])
        tops.append(top)
        remaining = int(np.searchsorted(ascending, top / _LEVEL_RATIO, side="right"))
    # A cell belongs to the smallest top that is >= its extent.
    edges = np.asarray(tops[::-1], dtype=np.float64)
    level_of_cell = np.searchsorted(edges, extent, side="left")
    minx = float(bounds[:, 0].min())
    miny = float(bounds[:, 1].min())
    # Every cell's entry, ready to be copied into its buckets.
    entries = np.column_stack(
        [np.arange(len(geoms), dtype=np.float64), ring_start, ring_len, bounds]
    )
    parts: list[_FloatArray] = []
    used = 0
    built: list[tuple[int, _Level]] = []
    for level, top in enumerate(edges.tolist()):
        members = np.flatnonzero(level_of_cell == level)
        # Bucket side = the level's largest extent: a cell meets at most 2x2
        # buckets. Measured at 1,000,000 cells: half that side is ~10 % faster
        # but takes ~35 % more memory (4x the buckets).
        step = top
        inv = 1.0 / step
        # Origins two buckets below the data, so every real key is >= 1 and
        # truncation toward zero behaves like floor for every indexed point.
        x0 = minx - 2.0 * step
        y0 = miny - 2.0 * step
        keys, cells = _memberships(geoms, bounds, members, x0, y0, inv, step)
        first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else keys
        counts = np.diff(np.r_[first, len(keys)])
        where = ((used + first * _HEAD) << _LEN_BITS) | (counts * _HEAD)
        parts.append(entries[cells].ravel())
        used += len(cells) * _HEAD
        buckets = dict(zip(keys[first].tolist(), where.tolist(), strict=True))
        built.append((len(members), (x0, y0, inv, buckets)))
    built.sort(key=lambda item: -item[0])
    return np.concatenate(parts), [lvl for _, lvl in built]


def _memberships(
    geoms: npt.NDArray[np.object_],
    bounds: _FloatArray,
    members: _IntArray,
    x0: float,
    y0: float,
    inv: float,
    step: float,
) -> tuple[_IntArray, _IntArray]:
    """(bucket key, cell) pairs where the cell meets the bucket, sorted by key then cell."""
    key_parts: list[_IntArray] = [np.empty(0, dtype=np.int64)]
    cell_parts: list[_IntArray] = [np.empty(0, dtype=np.int64)]
    # In chunks of cells: the (cell, bucket) pairs and their GEOS boxes for a
    # million cells at once would more than double the peak memory.
    for lo in range(0, len(members), _CELL_CHUNK):
        chunk = members[lo : lo + _CELL_CHUNK]
        b = bounds[chunk]
        # The same arithmetic as locate(); rounding is monotonic, so a point
        # inside a cell's bounding box always lands in one of its buckets.
        ix0 = ((b[:, 0] - x0) * inv).astype(np.int64)
        ix1 = ((b[:, 2] - x0) * inv).astype(np.int64)
        iy0 = ((b[:, 1] - y0) * inv).astype(np.int64)
        iy1 = ((b[:, 3] - y0) * inv).astype(np.int64)
        ny = iy1 - iy0 + 1
        per_cell = (ix1 - ix0 + 1) * ny
        cell = np.repeat(chunk, per_cell)
        offsets = np.repeat(np.cumsum(per_cell) - per_cell, per_cell)
        k = np.arange(len(cell), dtype=np.int64) - offsets
        ny_rep = np.repeat(ny, per_cell)
        kx = np.repeat(ix0, per_cell) + k // ny_rep
        ky = np.repeat(iy0, per_cell) + k % ny_rep
        # Keep a (cell, bucket) pair only if the polygon meets the bucket's
        # (slightly grown) box: a skewed quad's bounding box overlaps more
        # buckets than the quad does.
        boxes = shapely.box(
            x0 + kx * step - _BOX_MARGIN,
            y0 + ky * step - _BOX_MARGIN,
            x0 + (kx + 1) * step + _BOX_MARGIN,
            y0 + (ky + 1) * step + _BOX_MARGIN,
        )
        keep = shapely.intersects(geoms[cell], boxes)
        del boxes
        key_parts.append(kx[keep] * _KEY_SHIFT + ky[keep])
        cell_parts.append(cell[keep])
    keys = np.concatenate(key_parts)
    cells = np.concatenate(cell_parts)
    del key_parts, cell_parts
    # Within a bucket, ascending cell index = code order.
    order = np.lexsort((cells, keys))
    return keys[order], cells[order]
