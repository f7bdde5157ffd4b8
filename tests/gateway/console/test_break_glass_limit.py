"""The break-glass limit is one count per person, whichever door is used: the JSON API
and the console both spend the same day's allowance (gateway/custody/unsealing.py)."""

from __future__ import annotations

import pytest

from gateway.privacy.audit import AuditEntry
from grid.documents import Dispatch
from sms.records import OutboundMessage
from tests.gateway.api.test_dispatches_api import file
from tests.gateway.console.conftest import SUPERVISOR, WF_OFFICER, enrol, form_of
from tests.helpers import auth, texts_to, token_of, with_sms

WF = "530627-WF"
LIMIT = 3
WHY = "核实举报人所述的车辆信息"


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, case_window_s=0, rate_limit_unseal=f"{LIMIT}/day")


@pytest.fixture
def clue(client, county, log_in) -> str:
    """A clue of 乌峰派出所, and its duty officer logged in to the console."""
    [code] = file(client, county, 1)
    assert log_in(WF_OFFICER, enrol(WF_OFFICER).now()).status_code == 303
    return str(Dispatch.objects(report_code=code, station_code=WF).first().id)


def through_api(client, county, clue: str):
    return client.post(f"/api/v1/dispatches/{clue}/unseal", json={"reason": WHY},
                       headers=auth(token_of(county, "officer 乌峰派出所")))


def through_console(client, clue: str):
    url = f"/console/dispatches/{clue}"
    form = form_of(client.get(url).text, url + "/unseal")
    return client.post(url + "/unseal", data={**form, "reason": WHY, "understood": "yes"})


def refusals_and_notices() -> tuple[int, int]:
    return (AuditEntry.objects(action="report.unseal_refused").count(),
            OutboundMessage.objects(purpose="unseal_volume").count())


def test_the_api_and_then_the_console_spend_one_allowance(client, county, clue):
    assert [through_api(client, county, clue).status_code
            for _ in range(LIMIT - 1)] == [200] * (LIMIT - 1)
    last = through_console(client, clue)
    assert last.status_code == 200
    assert "张秀英" in last.text  # the last one of the day is shown
    assert refusals_and_notices() == (0, 0)

    over = through_console(client, clue)
    assert over.status_code == 429
    assert "今日查看举报人身份的次数已达上限" in over.text
    assert "张秀英" not in over.text
    assert AuditEntry.objects(action="report.unseal").count() == LIMIT
    assert refusals_and_notices() == (1, 1)
    assert through_api(client, county, clue).status_code == 429  # and the API agrees
    assert refusals_and_notices() == (2, 1)  # audited each time, the supervisor told once
    [notice] = texts_to(SUPERVISOR, purpose="unseal_volume")
    assert notice.startswith("【异常破封】乌峰派出所值班民警")


def test_the_console_and_then_the_api_spend_one_allowance(client, county, clue):
    assert [through_console(client, clue).status_code
            for _ in range(LIMIT - 1)] == [200] * (LIMIT - 1)
    last = through_api(client, county, clue)
    assert last.status_code == 200
    assert [who["name"] for who in last.json] == ["张秀英"]

    over = through_api(client, county, clue)
    assert over.status_code == 429
    assert "supervisor" in over.json["message"]
    assert int(over.headers["Retry-After"]) >= 1
    assert AuditEntry.objects(action="report.unseal").count() == LIMIT
    assert refusals_and_notices() == (1, 1)
    refused = through_console(client, clue)
    assert refused.status_code == 429
    assert "张秀英" not in refused.text
    assert AuditEntry.objects(action="report.unseal").count() == LIMIT


def test_a_refused_form_does_not_spend_the_allowance(client, county, clue):
    url = f"/console/dispatches/{clue}"
    for _ in range(LIMIT + 1):
        form = form_of(client.get(url).text, url + "/unseal")
        short = client.post(url + "/unseal", data={**form, "reason": "为什么", "understood": "yes"})
        assert short.status_code == 422
    assert through_api(client, county, clue).status_code == 200
