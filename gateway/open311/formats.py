"""The two formats of GeoReport v2: JSON, and XML by the Spark convention's mapping.

A value is written as the spec's examples write it: a list is an element of the
list's name holding one element per item (`services` → `service`), None an empty
element, booleans `true`/`false`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape

from flask import Response

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
FORMATS = ("json", "xml")
DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
# The element of each item of a list, by the list's element name.
ITEM = {"services": "service", "service_requests": "request", "errors": "error",
        "endpoints": "endpoint", "formats": "format", "attributes": "attribute",
        "values": "value"}
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(_NOT_XML.sub("", str(value)))


def _element(name: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_element(k, v) for k, v in value.items())
    elif isinstance(value, list):
        inner = "".join(_element(ITEM[name], item) for item in value)
    else:
        inner = _text(value)
    return f"<{name}>{inner}</{name}>"


def xml(root: str, value: Any) -> str:
    """`value` as the spec's XML document with root element `root`."""
    return DECLARATION + _element(root, value)


def respond(fmt: str, root: str, value: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    """The answer in the format the path asked for (`.json` or `.xml`)."""
    if fmt == "xml":
        body, mimetype = xml(root, value), XML_TYPE
    else:
        body, mimetype = json.dumps(value, ensure_ascii=False), JSON_TYPE
    return Response(body, status=status, headers=headers, content_type=mimetype)


def errors(fmt: str, status: int, description: str,
           headers: dict[str, str] | None = None) -> Response:
    """The spec's error answer: a list of `{code, description}`."""
    return respond(fmt, "errors", [{"code": status, "description": description}], status,
                   headers)
