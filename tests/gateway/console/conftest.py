"""Console fixtures: logging in through the login form, as a browser does."""

from __future__ import annotations

import re

import pyotp
import pytest

from gateway.access import mfa
from gateway.records.people import Officer

WF_OFFICER = "+8613800003001"  # 乌峰派出所值班民警
NT_OFFICER = "+8613800003002"  # 南台派出所值班民警
SUPERVISOR = "+8613800003099"
REPORTER = "+8613800001001"  # 张秀英, a grid worker
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ONCE = re.compile(r'name="once" value="([^"]+)"')


def hidden(html: str, pattern: re.Pattern[str] = CSRF) -> str:
    found = pattern.search(html)
    assert found, "no such hidden field on the page"
    return found.group(1)


def enrol(phone: str) -> pyotp.TOTP:
    """Give the officer with `phone` a TOTP secret; the authenticator app's side of it."""
    return pyotp.TOTP(mfa.enroll(Officer.by_phone(phone).first()))


@pytest.fixture
def log_in(client, county):
    """log_in(phone, otp=None) → the response to the login form's POST (not followed)."""

    def log_in(phone: str, otp: str | None = None, password: str | None = None):
        client.delete_cookie("sg_console", path="/console/")
        form = client.get("/console/login")
        assert form.status_code == 200
        data = {"csrf": hidden(form.text), "phone": phone,
                "password": county.password if password is None else password}
        if otp is not None:
            data["otp"] = otp
        return client.post("/console/login", data=data)

    return log_in


def form_of(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action` on a page."""
    start = html.index(f'action="{action}"')
    end = html.index("</form>", start)
    chunk = html[start:end]
    fields = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', chunk))
    return fields
