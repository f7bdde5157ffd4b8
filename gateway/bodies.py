"""Request bodies anyone can send, judged before anything parses them.

A JSON body is refused before Python's recursive parser and marshmallow see
it when it is too large (413), nested deeper than `max_json_depth` (400: the
depth is counted by a flat scan of the bytes, so no recursion), or carries
text that is not Unicode — a lone surrogate such as ``"\\ud800"`` (422: it
could not be sealed or stored). Every refusal has the usual JSON error body.

One endpoint takes more: a roster upload (`POST /api/v1/imports`, multipart) may
be as large as a roster file may be (gateway/enrolment/sheets.py, 20 MB) plus
the multipart envelope; werkzeug spools such a file to disk, not to memory.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_smorest import abort

from gateway.enrolment.sheets import MAX_BYTES as ROSTER_MAX_BYTES
from gateway.settings import Settings

UPLOADS = {"/api/v1/imports": ROSTER_MAX_BYTES + 64 * 1024}  # path → its body limit
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def json_depth(body: bytes, limit: int) -> int:
    """How deep `body` nests arrays and objects, counting no further than `limit` + 1."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def unpaired_surrogate(value: Any) -> str | None:
    """The path of the first string in `value` that is not valid Unicode (None if all are)."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:  # a loop, not recursion: depth is bounded already, but cheaply so
        path, item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path or "(the body)"
        elif isinstance(item, dict):
            for key, inner in item.items():
                pending.append((f"{path}.{key}" if path else str(key), key))
                pending.append((f"{path}.{key}" if path else str(key), inner))
        elif isinstance(item, list):
            pending.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
    return None


def init_app(app: Flask, settings: Settings) -> None:
    """The body limit for every request, and the JSON checks for every JSON request."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.before_request
    def judge_body() -> None:
        limit = settings.max_body_bytes
        if request.method == "POST" and request.path in UPLOADS:
            limit = UPLOADS[request.path]
            request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            abort(413, message=f"the body is larger than {limit} bytes")
        if request.method not in {"POST", "PUT", "PATCH"} or not request.is_json:
            return
        body = request.get_data(cache=True)  # bounded by MAX_CONTENT_LENGTH (413)
        # No body nests deeper than it has brackets: most skip the byte-by-byte scan.
        could_be_deep = body.count(b"[") + body.count(b"{") > settings.max_json_depth
        if could_be_deep and json_depth(body, settings.max_json_depth) > settings.max_json_depth:
            abort(400, message=f"JSON nested deeper than {settings.max_json_depth} levels")
        # Parsed once: Flask caches it and the view's schema reads the same object. Not
        # JSON: None here, and the view's own parser answers 400 with its usual message.
        parsed = request.get_json(silent=True)
        where = unpaired_surrogate(parsed)
        if where is not None:
            abort(422, message="text is not valid Unicode (an unpaired surrogate such as "
                               "\\ud800)", errors={"json": {where: ["not valid Unicode"]}})
