"""Bodies anyone can send: too deep, not Unicode, too large: a 4xx on every operation."""

from __future__ import annotations

import re

import pytest

from gateway.bodies import json_depth, unpaired_surrogate

DEEP_ARRAY = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
SURROGATE = b'{"details": "\\ud800", "reason": "x\\udfff", "text": "\\ud800", "phone": "1"}'


def operations(client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json
    found = []
    for path, ops in spec["paths"].items():
        url = re.sub(r"\{[^}]+\}", "0123456789abcdef01234567", path)
        found += [(method, url) for method in ops if method in ("post", "put", "patch")]
    assert len(found) >= 12
    return found


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_deep_nesting_is_400_on_every_operation(client, body, caplog):
    for method, url in operations(client):
        resp = client.open(url, method=method, data=body, content_type="application/json")
        assert resp.status_code == 400, (method, url, resp.status_code)
        assert resp.json["code"] == 400
        assert "nested deeper" in resp.json["message"]
    assert "Traceback" not in caplog.text


def test_an_unpaired_surrogate_is_422_on_every_operation(client, caplog):
    for method, url in operations(client):
        resp = client.open(url, method=method, data=SURROGATE, content_type="application/json")
        assert resp.status_code == 422, (method, url, resp.status_code)
        assert resp.json["errors"]["json"]
    assert "Traceback" not in caplog.text


def test_a_body_over_the_limit_is_413_before_it_is_read(client, settings):
    big = b'{"phone": "1", "password": "' + b"x" * settings.max_body_bytes + b'"}'
    resp = client.post("/api/v1/auth/login", data=big, content_type="application/json")
    assert resp.status_code == 413
    assert resp.json["code"] == 413


def test_an_ordinary_report_still_passes(client, county):
    from tests.helpers import auth, token_of

    resp = client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 张秀英")),
                       json={"client_id": "bodies-0001", "category": "CHILD",
                             "details": "括号[和{不算嵌套\\\"引号\"也不算"})
    assert resp.status_code == 201, resp.json


def test_the_depth_scan_ignores_brackets_inside_strings():
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, [2]]}', 5) == 3
    assert json_depth(b'["\\"]]]]"]', 5) == 1
    assert json_depth(DEEP_ARRAY, 32) == 33  # stops counting past the limit


def test_the_unicode_check_finds_the_bad_string():
    assert unpaired_surrogate({"a": [{"b": "ok"}, {"c": "\ud800"}]}) == "a[1].c"
    assert unpaired_surrogate({"\udfff": 1}) == "\udfff"
    assert unpaired_surrogate({"a": ["fine", 1, None]}) is None
