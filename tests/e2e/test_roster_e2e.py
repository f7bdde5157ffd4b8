"""A roster end to end: imported by API (gunicorn → an RQ worker on the maintenance queue) and
by the `safegrid` command; each new reporter's welcome SMS reaches fakesmsc through real
Kannel in the reporter's language; a deactivated reporter's next SMS is a public tip.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import requests

from deploy.processes import find_program
from gateway.records.people import Reporter
from gateway.records.reports import Report
from tests.e2e.sms_app import SHORT_CODE, Handset
from tests.helpers import auth, sms_to, token_of

pytestmark = pytest.mark.e2e

BY_API = ("姓名,手机号,角色,单位,语言\n孙老师,13912346001,教师,530627-U03,中文\n"
          "Ms Li,13912346002,teacher,530627-U03,英文\n")
BY_CLI = "name,phone,role,grid_code,language\n钱网格,13912346003,grid_worker,530627101003002,zh\n"


def _text_of(part: str) -> str:
    """A segment as fakesmsc shows it: text, or `udh=<hex> data=<hex>` (UCS-2 when the
    concatenated message is)."""
    if not part.startswith("udh="):
        return part
    data = bytes.fromhex(part.partition(" data=")[2])
    return data.decode("utf-16-be")


def web_url(stack) -> str:
    [web] = [s for s in stack.services if s.name.startswith("gunicorn")]
    return f"http://127.0.0.1:{web.port}"


def test_a_roster_imported_by_api_and_by_cli_is_welcomed_in_each_language(
        sms_stack, county, settings, tmp_path):
    stack, carrier = sms_stack
    base, admin = web_url(stack), auth(token_of(county, "admin"))
    resp = requests.post(f"{base}/api/v1/imports", headers=admin, timeout=10, files={
        "file": ("roster.csv", BY_API.encode("gbk"), "text/csv")},
        data={"kind": "reporters", "notify": "true"})
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 60
    while (state := requests.get(f"{base}/api/v1/imports/{resp.json()['id']}", headers=admin,
                                 timeout=10).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["summary"] == {"created": 2, "updated": 0, "unchanged": 0, "error": 0}

    roster = tmp_path / "roster.csv"
    roster.write_text(BY_CLI, encoding="utf-8")
    env = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "REDIS_URL": settings.redis_url,
           "SAFEGRID_DATA_KEYS": settings.data_keys, "SAFEGRID_SMS_ENABLED": "1"}
    done = subprocess.run([find_program("safegrid"), "people", "import", str(roster),
                           "--kind", "reporters", "--county", "530627", "--notify"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "1 created" in done.stdout

    handsets = Handset(carrier)

    def welcome(phone: str) -> str:
        """The welcome as the handset shows it: its segments (at most two) joined."""
        [sent] = sms_to(phone, purpose="welcome")
        assert sent.segments <= 2
        parts = handsets.texts_to(phone, sent.segments)
        return "".join(_text_of(part) for part in parts)

    chinese = welcome("+8613912346001")
    assert chinese.startswith("您已登记为SafeGrid报告人")
    assert "镇雄县第一小学" in chinese
    english = welcome("+8613912346002")
    assert "enrol" in english.lower()
    assert "镇雄县第一小学" in english
    assert welcome("+8613912346003").startswith("您已登记为SafeGrid报告人")  # by the CLI

    # Deactivated: the next SMS from that phone is filed as a public tip.
    teacher = Reporter.by_phone("+8613912346002").get()
    assert requests.post(f"{base}/api/v1/reporters/{teacher.id}/deactivate", headers=admin,
                         timeout=10).status_code == 200
    carrier.send_mo("+8613912346002", SHORT_CODE, "举报 拐卖儿童 学校门口有陌生人纠缠学生",
                    ucs2=True)
    deadline = time.monotonic() + 30
    while not Report.objects(source="sms").count():
        assert time.monotonic() < deadline, "the tip was not filed"
        time.sleep(0.2)
    [tip] = [r for r in Report.objects(source="sms") if r.details == "学校门口有陌生人纠缠学生"]
    assert tip.trust == "public"
    assert "reporter_deactivated" in tip.flags

    time.sleep(0.5)  # let the last log lines reach the files
    logs = "\n".join(s.log_path.read_text(errors="replace") for s in stack.services
                     if s.name.startswith(("gunicorn", "worker")) and s.log_path)
    assert "/api/v1/imports" in logs  # the logs were read and do cover the upload
    for secret in ("13912346001", "13912346002", "13912346003", "孙老师", "Ms Li", "钱网格"):
        assert secret not in logs, f"{secret!r} in SafeGrid's logs"
    assert not any(secret in done.stdout + done.stderr for secret in ("13912346003", "钱网格"))
