"""Datum conversion between WGS-84 (GPS) and the Chinese map datums GCJ-02 and BD-09.

Chinese map SDKs (AMap, Tencent: GCJ-02; Baidu: BD-09) report shifted
coordinates; everything SafeGrid stores and indexes is WGS-84.
"""

from __future__ import annotations

import math

import prcoords

DATUMS = ("wgs84", "gcj02", "bd09")


def _normalise(datum: str) -> str:
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


def _in_china(lat: float, lon: float) -> bool:
    # prcoords' own box. Checked here so that outside China we return the
    # input unchanged without prcoords' per-call warning, and so that its
    # iterative inverses (which skip the check) are never applied abroad.
    return bool(prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)))


def _gcj_to_wgs(lat: float, lon: float) -> tuple[float, float]:
    if not _in_china(lat, lon):
        return lat, lon
    # The iterative inverse is exact to ~0.1 mm; the rough one is off by metres.
    wgs = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon))
    return float(wgs.lat), float(wgs.lon)


def _wgs_to_gcj(lat: float, lon: float) -> tuple[float, float]:
    if not _in_china(lat, lon):
        return lat, lon
    gcj = prcoords.wgs_gcj(prcoords.Coords(lat, lon), False)
    return float(gcj.lat), float(gcj.lon)


def to_wgs84(lat: float, lon: float, datum: str) -> tuple[float, float]:
    """Convert (lat, lon) given in `datum` to WGS-84; GCJ-02 equals WGS-84 outside China."""
    name = _normalise(datum)
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
    name = _normalise(datum)
    _check(lat, lon)
    if name == "wgs84":
        return float(lat), float(lon)
    gcj_lat, gcj_lon = _wgs_to_gcj(lat, lon)
    if name == "gcj02":
        return gcj_lat, gcj_lon
    bd = prcoords.gcj_bd(prcoords.Coords(gcj_lat, gcj_lon))
    return float(bd.lat), float(bd.lon)
