"""Insight: the bureau's figures (分析研判), computed from reports, dispatches and the roster.

`scope` (whose county, which period), `counts` (reports by cell, township and
county × category × week or month; the hotspot map), `response` (station
response times), `duty` (the mandatory-reporting duty: which units reported),
`tables` (every figure as rows for CSV and XLSX), `summary` (the monthly
printable page). Every count of reports is published through grid/figures.py's
suppression (docs/insight.md). Aggregation pipelines only, with standard stages
and operators, so SecantusDB and MongoDB answer the same. May import floors 0–8.
"""
