"""Benchmark: point -> grid cell with many cells loaded (ARCHITECTURE.md targets).

Builds N synthetic cells (default 1,000,000): slightly irregular quadrilaterals
that tile 110-120 E, 28-36 N (about 880,000 km2, a few provinces; ~0.9 km2 a
cell), with 15-character codes in shuffled order. Measures index build time,
memory, and single-threaded `CellIndex.locate` calls per second over random
points, next to `h3.latlng_to_cell(lat, lon, 9)` per call in the same run.

    .venv/bin/python bench/locate.py [--cells N] [--points N]
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grid.index import CellIndex  # noqa: E402

TARGET_LOOKUPS_PER_S = 100_000
TARGET_BUILD_S = 60.0
TARGET_RSS_MB = 2048.0
AREA = (110.0, 28.0, 120.0, 36.0)  # min lon, min lat, max lon, max lat


def rss_mb() -> float:
    """Current resident set size in MB, from /proc."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_cells(n_cells: int, seed: int) -> Iterator[tuple[str, list[tuple[float, float]]]]:
    """Yield (code, closed ring) for a jittered quad tiling of AREA with about n_cells cells."""
    side = max(1, round(math.sqrt(n_cells)))
    nx, ny = side, max(1, n_cells // side)
    min_lon, min_lat, max_lon, max_lat = AREA
    dx = (max_lon - min_lon) / nx
    dy = (max_lat - min_lat) / ny
    rng = np.random.default_rng(seed)
    vx = min_lon + np.arange(nx + 1, dtype=np.float64)[:, None] * dx + np.zeros((nx + 1, ny + 1))
    vy = min_lat + np.arange(ny + 1, dtype=np.float64)[None, :] * dy + np.zeros((nx + 1, ny + 1))
    # Shared vertices moved by up to a quarter cell: irregular but still a tiling.
    vx[1:-1, 1:-1] += rng.uniform(-0.25, 0.25, (nx - 1, ny - 1)) * dx
    vy[1:-1, 1:-1] += rng.uniform(-0.25, 0.25, (nx - 1, ny - 1)) * dy
    xs: list[list[float]] = vx.tolist()
    ys: list[list[float]] = vy.tolist()
    del vx, vy
    # Codes in an order unrelated to position, as real village codes are.
    serial = rng.permutation(nx * ny).tolist()
    for i in range(nx):
        x0, x1 = xs[i], xs[i + 1]
        y0, y1 = ys[i], ys[i + 1]
        for j in range(ny):
            s = serial[i * ny + j]
            code = f"33{s // 1000:010d}{s % 1000:03d}"
            yield code, [
                (x0[j], y0[j]),
                (x1[j], y1[j]),
                (x1[j + 1], y1[j + 1]),
                (x0[j + 1], y0[j + 1]),
                (x0[j], y0[j]),
            ]


def best_of_three(*runs: Callable[[], None]) -> list[float]:
    """Fastest of three runs of each, in seconds, taking turns so load spikes hit both."""
    best = [math.inf] * len(runs)
    for _ in range(3):
        for k, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print figures, ratios and whether the targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cells", type=int, default=1_000_000, help="cells to index")
    parser.add_argument("--points", type=int, default=100_000, help="random lookup points")
    parser.add_argument("--seed", type=int, default=20210401)
    args = parser.parse_args(argv)

    try:
        import h3  # only the benchmark needs it, as the baseline
    except ImportError:
        print("the baseline needs the h3 package: .venv/bin/pip install 'h3>=4,<5'")
        return 2

    gc.collect()
    rss_before = rss_mb()
    start = time.perf_counter()
    index = CellIndex.build(synthetic_cells(args.cells, args.seed))
    build_s = time.perf_counter() - start
    gc.collect()
    rss_after = rss_mb()
    peak = peak_rss_mb()

    rnd = random.Random(args.seed)
    min_lon, min_lat, max_lon, max_lat = AREA
    points = [
        (rnd.uniform(min_lat, max_lat), rnd.uniform(min_lon, max_lon)) for _ in range(args.points)
    ]

    # Same answers both ways, or the speed means nothing.
    sample = points[:10_000]
    many = index.locate_many([p[0] for p in sample], [p[1] for p in sample])
    pairs = zip(sample, many, strict=True)
    mismatches = sum(index.locate(lat, lon) != m for (lat, lon), m in pairs)
    found = sum(m is not None for m in many)

    # Both loops have the same shape: one call per point, nothing else.
    locate = index.locate
    latlng_to_cell = h3.latlng_to_cell

    def run_locate() -> None:
        for lat, lon in points:
            locate(lat, lon)

    def run_h3() -> None:
        for lat, lon in points:
            latlng_to_cell(lat, lon, 9)

    locate_s, h3_s = best_of_three(run_locate, run_h3)
    locate_per_s = len(points) / locate_s
    h3_per_s = len(points) / h3_s

    ok_speed = locate_per_s >= TARGET_LOOKUPS_PER_S
    ok_build = build_s <= TARGET_BUILD_S
    ok_rss = peak <= TARGET_RSS_MB
    print(f"cells indexed           {len(index):>12,}")
    print(f"index build             {build_s:>12.1f} s   (target <= {TARGET_BUILD_S:.0f} s)")
    print(f"RSS before build        {rss_before:>12.0f} MB")
    grown = rss_after - rss_before
    print(f"RSS after build         {rss_after:>12.0f} MB   (index ~{grown:.0f} MB)")
    print(f"peak RSS                {peak:>12.0f} MB   (target <= {TARGET_RSS_MB:.0f} MB)")
    print(f"points found in a cell  {found:>12,} of {len(sample):,}; locate vs locate_many "
          f"mismatches: {mismatches}")
    target = f"(target >= {TARGET_LOOKUPS_PER_S:,})"
    print(f"locate                  {locate_per_s:>12,.0f} calls/s {target}")
    print(f"h3.latlng_to_cell res 9 {h3_per_s:>12,.0f} calls/s (baseline)")
    print(f"ratio locate / h3       {locate_per_s / h3_per_s:>12.3f}")
    print(f"ratio locate / target   {locate_per_s / TARGET_LOOKUPS_PER_S:>12.2f}")
    print(
        "targets: "
        f"lookups {'MET' if ok_speed else 'MISSED'}, "
        f"build {'MET' if ok_build else 'MISSED'}, "
        f"memory {'MET' if ok_rss else 'MISSED'}"
    )
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
