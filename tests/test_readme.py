"""The README's examples of each dispatch action match the OpenAPI document."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = json.loads((ROOT / "tests" / "gateway" / "api" / "openapi.json").read_text("utf-8"))
ROW = re.compile(r"^\| [^|]+ \| `(/api/v1/dispatches/<id>/[a-z-]+)` \| (.+) \|$", re.M)


def _rows() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return ROW.findall(readme)


def _schema(ref: str) -> dict:
    return SPEC["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_every_dispatch_action_of_the_api_has_a_readme_example():
    documented = {path.replace("<id>", "{dispatch_id}") for path, _ in _rows()}
    actions = {p for p, ops in SPEC["paths"].items()
               if p.startswith("/api/v1/dispatches/{dispatch_id}/") and "post" in ops}
    assert actions == documented


def test_each_readme_body_is_what_the_operation_accepts():
    for path, cell in _rows():
        op = SPEC["paths"][path.replace("<id>", "{dispatch_id}")]["post"]
        bodies = [json.loads(b) for b in re.findall(r"`(\{.*?\})`", cell)]
        if cell.strip() == "none":
            assert "requestBody" not in op, path
            continue
        schema = _schema(op["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        assert bodies, path
        for body in bodies:
            assert set(body) <= set(schema["properties"]), (path, body)
            assert set(schema.get("required", ())) <= set(body), (path, body)
            for name, value in body.items():
                allowed = schema["properties"][name].get("enum")
                assert allowed is None or value in allowed, (path, name, value)
