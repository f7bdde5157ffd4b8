"""Observing SafeGrid: /metrics for Prometheus and the request id on every request.

`collector` reads the truth at scrape time (Redis counters and histograms from
gateway/telemetry.py, RQ's queues and registries, an indexed count of overdue
dispatches in MongoDB); `views` serves it behind a bearer token or loopback, and
gives each request its id (gateway/jsonlog.py). May import floors 0-8; imported by
`app` only. docs/metrics.md says why the numbers live in Redis.
"""
