"""Coordinates and geocoding: datums, distances and rings, the offline gazetteer."""
