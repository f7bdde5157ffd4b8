"""Datum conversion between WGS-84 (GPS) and the Chinese map datums GCJ-02 and BD-09.

Chinese map SDKs (AMap, Tencent: GCJ-02; Baidu: BD-09) report shifted
coordinates; everything SafeGrid stores and indexes is WGS-84.

GCJ-02's shift applies in mainland China only. Whether a point is there is
decided by a real boundary (geo/data/mainland_china.geojson, from Natural
Earth; its README says how it was made), not prcoords' rectangle, which
also covers Seoul, Pyongyang, Hanoi, Ulaanbaatar and Osaka. Hong Kong, Macau
and Taiwan are outside it: their maps, and the Chinese SDKs' maps of them,
are not shifted, so a point there is taken as given. Within about 2 km of a
land border the answer follows Natural Earth's line; the shift is ~0.5 km.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import prcoords
import shapely
from shapely.geometry import shape

MAINLAND_FILE = Path(__file__).with_name("data") / "mainland_china.geojson"

DATUMS = ("wgs84", "gcj02", "bd09")


def normalise(datum: str) -> str:
    """The datum's canonical name (`GCJ-02`, `gcj_02`, `GCJ02` → `gcj02`); ValueError if unknown."""
    # Clients spell these "WGS-84", "GCJ_02", "bd09"; accept all of them.
    name = datum.strip().lower().replace("-", "").replace("_", "")
    if name not in DATUMS:
        raise ValueError(f"unknown datum {datum!r}; expected one of {', '.join(DATUMS)}")
    return name


def _check(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"coordinates must be finite, got lat={lat!r}, lon={lon!r}")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"coordinates out of range: lat={lat!r}, lon={lon!r}")


@functools.cache
def _mainland() -> Any:
    """The mainland-China boundary, read once per process and prepared for fast tests."""
    collection = json.loads(MAINLAND_FILE.read_text(encoding="utf-8"))
    geometry = shape(collection["features"][0]["geometry"])
    shapely.prepare(geometry)
    return geometry


def in_mainland_china(lat: float, lon: float) -> bool:
    """Whether GCJ-02 applies at (lat, lon): inside the mainland-China boundary."""
    # prcoords' rectangle first: most points abroad are decided without the polygon.
    if not prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)):
        return False
    return bool(shapely.contains_xy(_mainland(), lon, lat))


def _gcj_to_wgs(lat: float, lon: float) -> tuple[float, float]:
    if not prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)):
        return lat, lon
    # The iterative inverse is exact to ~0.1 mm; the rough one is off by metres.
    wgs = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon))
    # Decided on the true (WGS-84) point, as the forward shift is: then every
    # mainland point comes back exactly. Within ~0.5 km of the boundary a GCJ-02
    # point has two readings (shifted from inside, or unshifted from outside);
    # this takes the first.
    if not in_mainland_china(float(wgs.lat), float(wgs.lon)):
        return lat, lon
    return float(wgs.lat), float(wgs.lon)


def _wgs_to_gcj(lat: float, lon: float) -> tuple[float, float]:
    # Outside the mainland the input is returned unchanged, without prcoords' per-call
    # warning; its iterative inverses (which skip that check) never run abroad.
    if not in_mainland_china(lat, lon):
        return lat, lon
    gcj = prcoords.wgs_gcj(prcoords.Coords(lat, lon), False)
    return float(gcj.lat), float(gcj.lon)


def to_wgs84(lat: float, lon: float, datum: str) -> tuple[float, float]:
    """Convert (lat, lon) given in `datum` to WGS-84; GCJ-02 is WGS-84 outside the mainland."""
    name = normalise(datum)
    _check(lat, lon)
    if name == "wgs84":
        return float(lat), float(lon)
    if name == "gcj02":
        return _gcj_to_wgs(lat, lon)
    # BD-09 is GCJ-02 plus Baidu's own offset, which applies everywhere.
    gcj = prcoords.bd_gcj_bored(prcoords.Coords(lat, lon))
    return _gcj_to_wgs(float(gcj.lat), float(gcj.lon))


def from_wgs84(lat: float, lon: float, datum: str) -> tuple[float, float]:
    """Convert WGS-84 (lat, lon) to `datum`; the inverse of `to_wgs84`."""
    name = normalise(datum)
    _check(lat, lon)
    if name == "wgs84":
        return float(lat), float(lon)
    gcj_lat, gcj_lon = _wgs_to_gcj(lat, lon)
    if name == "gcj02":
        return gcj_lat, gcj_lon
    bd = prcoords.gcj_bd(prcoords.Coords(gcj_lat, gcj_lon))
    return float(bd.lat), float(bd.lon)
