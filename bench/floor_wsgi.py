"""The web tier's floor for bench/intake.py: a WSGI app that reads the request and
answers 201 with a small JSON body, doing nothing else. Served by the same gunicorn
with the same settings, it shows what HTTP and gunicorn alone cost per request."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"code": "R0000000", "status": "received", "category": "CHILD"}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read()
    start_response("201 CREATED", [("Content-Type", "application/json"),
                                   ("Content-Length", str(len(BODY)))])
    return [BODY]
