"""The OpenAPI document is a contract: it changes only on purpose, byte for byte.

`openapi.json` beside this file is what `/openapi.json` served when gateway/
was cut into rooms. A change to the API surface changes the document: look at
the diff, and if it is what you meant, write the new document here
(`SAFEGRID_WRITE_OPENAPI=1 pytest tests/gateway/api/test_openapi_unchanged.py`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

EXPECTED = Path(__file__).with_name("openapi.json")


def test_openapi_document_is_the_recorded_one(client):
    served = client.get("/openapi.json").data
    if os.environ.get("SAFEGRID_WRITE_OPENAPI") == "1":
        EXPECTED.write_bytes(served)
    expected = EXPECTED.read_bytes()
    if served != expected:
        diff = "".join(difflib.unified_diff(
            expected.decode().splitlines(keepends=True), served.decode().splitlines(keepends=True),
            "recorded openapi.json", "served /openapi.json", n=2))
        raise AssertionError(f"/openapi.json changed:\n{diff[:4000]}")
