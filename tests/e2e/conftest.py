"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest

from deploy.processes import Stack
from tests.e2e.sms_app import start_sms_app


@pytest.fixture
def sms_stack(settings, county, tmp_path):  # type: ignore[no-untyped-def]
    """Kannel + fakesmsc, gunicorn and the lanes on the test's stores: (stack, carrier)."""
    stack = Stack(tmp_path / "logs")
    try:
        app = start_sms_app(stack, settings)
        yield stack, app.carrier
    finally:
        stack.stop()
