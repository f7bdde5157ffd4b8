"""Where and who: grid cells, stations, the spatial index, routing and alerts."""
