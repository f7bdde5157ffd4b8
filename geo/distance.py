"""Great-circle distances, destinations, circle rings and bounding boxes on a spherical Earth.

A sphere is within 0.5 % of the ellipsoid: plenty for alert rings and
"nearest cell" decisions, and an order of magnitude cheaper.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6371008.8  # IUGG mean radius


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    # min() guards asin against rounding just above 1 for antipodal points.
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def destination(
    lat: float, lon: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]:
    """The (lat, lon) reached after `distance_m` metres on `bearing_deg` (0 = north)."""
    delta = distance_m / EARTH_RADIUS_M
    theta = math.radians(bearing_deg)
    phi1 = math.radians(lat)
    lmb1 = math.radians(lon)
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(
        theta
    )
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lmb2 = lmb1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * sin_phi2,
    )
    # Normalise longitude to [-180, 180).
    lon2 = (math.degrees(lmb2) + 540.0) % 360.0 - 180.0
    return math.degrees(phi2), lon2


def ring(lat: float, lon: float, radius_m: float, points: int = 32) -> list[tuple[float, float]]:
    """A closed ring of (lon, lat) pairs (GeoJSON order) approximating a circle."""
    if points < 3:
        raise ValueError(f"a ring needs at least 3 points, got {points}")
    if not radius_m > 0:
        raise ValueError(f"radius must be positive, got {radius_m!r}")
    out: list[tuple[float, float]] = []
    for k in range(points):
        plat, plon = destination(lat, lon, 360.0 * k / points, radius_m)
        out.append((plon, plat))
    out.append(out[0])
    return out


def bbox_around(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of every point within `radius_m` metres."""
    if not radius_m >= 0:
        raise ValueError(f"radius must be non-negative, got {radius_m!r}")
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    min_lat = lat - dlat
    max_lat = lat + dlat
    if min_lat <= -90.0 or max_lat >= 90.0 or dlat >= 90.0:
        # The circle reaches a pole: every longitude is inside.
        return -180.0, max(min_lat, -90.0), 180.0, min(max_lat, 90.0)
    # The widest longitude span is not at the centre's latitude but at the
    # tangent point: asin(sin r / cos lat) (spherical geometry).
    ratio = math.sin(radius_m / EARTH_RADIUS_M) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return -180.0, min_lat, 180.0, max_lat
    dlon = math.degrees(math.asin(ratio))
    min_lon = lon - dlon
    max_lon = lon + dlon
    if min_lon < -180.0 or max_lon > 180.0:
        # Crossing the antimeridian: a single box must span all longitudes.
        return -180.0, min_lat, 180.0, max_lat
    return min_lon, min_lat, max_lon, max_lat
