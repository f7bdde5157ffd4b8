"""gunicorn's access log with the route template instead of the path.

Paths carry report codes and dispatch ids (`GET /api/v1/reports/R5WQB1R`); the
log must not. SafeGrid puts the matched route (`/api/v1/reports/<string:code>`)
into the WSGI environ as `safegrid.route` (gateway/app.py); this logger writes
that in place of `%(U)s`, and `-` for a path that matched no route.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

ROUTE_KEY = "safegrid.route"


class RouteLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = environ.get(ROUTE_KEY, "-")
        return atoms
