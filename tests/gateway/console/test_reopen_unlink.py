"""Reopening a closed clue and unlinking a report from a clue on the dispatch page: the
API's own functions (workflow's reopen, unlinking.unlink), with CSRF and one-off forms,
refusals as pages."""

from __future__ import annotations

import pytest

from gateway.privacy.audit import AuditEntry
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Dispatch
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.console.conftest import NT_OFFICER, SUPERVISOR, WF_OFFICER, enrol, form_of
from tests.gateway.delivery.test_cases import LINK_KEY, codes_of
from tests.helpers import auth, token_of

WF = "530627-WF"


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(link_key=LINK_KEY, case_window_s=3600)


@pytest.fixture
def clue(client, county) -> tuple[Dispatch, str, str]:
    """One clue at 乌峰 of two linked reports: (dispatch, first code, second code)."""
    codes = []
    for n, (who, category) in enumerate((("reporter 张秀英", "WOMAN"),
                                         ("reporter 李国强", "LABOUR"))):
        resp = client.post("/api/v1/reports", headers=auth(token_of(county, who)), json={
            "client_id": f"console-unlink-{n:04d}", "category": category,
            "grid_code": cell_code(0, 0, 0)})
        assert resp.status_code == 201, resp.json
        codes.append(resp.json["code"])
        run_jobs()
    [dispatch] = Dispatch.objects(station_code=WF)
    assert codes_of(dispatch) == codes
    return dispatch, codes[0], codes[1]


@pytest.fixture
def wf(log_in):
    assert log_in(WF_OFFICER, enrol(WF_OFFICER).now()).status_code == 303


def closed(client, county, dispatch: Dispatch) -> None:
    officer = auth(token_of(county, "officer 乌峰派出所"))
    url = f"/api/v1/dispatches/{dispatch.id}"
    assert client.post(url + "/acknowledge", headers=officer).status_code == 200
    assert client.post(url + "/close", headers=officer,
                       json={"outcome": "confirmed_no_crime"}).status_code == 200


def test_an_officer_reopens_a_closed_clue_with_a_reason(client, county, clue, wf):
    dispatch, _, _ = clue
    closed(client, county, dispatch)
    url = f"/console/dispatches/{dispatch.id}"
    page = client.get(url).text
    assert 'id="unlink"' not in page  # nothing leaves a closed clue
    form = form_of(page, url + "/reopen")
    blank = client.post(url + "/reopen", data={**form, "reason": "   "})
    assert blank.status_code == 422
    assert "重新打开须写明原因" in blank.text
    assert Dispatch.objects(id=dispatch.id).first().status == "closed"
    unsigned = client.post(url + "/reopen", data={"reason": "家长又来报案，情况有变"})
    assert unsigned.status_code == 403
    assert Dispatch.objects(id=dispatch.id).first().status == "closed"

    form = form_of(client.get(url).text, url + "/reopen")
    done = client.post(url + "/reopen", data={**form, "reason": "家长又来报案，情况有变"})
    assert done.status_code == 303
    assert done.headers["Location"] == f"{url}?done=reopen"
    reopened = Dispatch.objects(id=dispatch.id).first()
    assert (reopened.status, reopened.outcome) == ("acknowledged", None)
    assert reopened.history[-1]["action"] == "reopen"
    assert AuditEntry.objects(action="dispatch.reopen").count() == 1
    assert {r.status for r in Report.objects(code__in=codes_of(reopened))} == {"acknowledged"}
    page = client.get(done.headers["Location"]).text
    assert "线索已重新打开" in page
    assert 'action="' + url + '/reopen"' not in page  # open again: no reopen form
    again = client.post(url + "/reopen", data={**form, "reason": "家长又来报案，情况有变"})
    assert again.status_code == 409  # the same form twice
    assert AuditEntry.objects(action="dispatch.reopen").count() == 1


def test_only_the_station_reopens(client, county, clue, log_in):
    dispatch, _, _ = clue
    closed(client, county, dispatch)
    url = f"/console/dispatches/{dispatch.id}"
    assert log_in(SUPERVISOR).status_code == 303
    page = client.get(url)
    assert page.status_code == 200
    assert 'action="' + url + '/reopen"' not in page.text
    csrf = form_of(page.text, "/console/logout")["csrf"]
    refused = client.post(url + "/reopen", data={"csrf": csrf, "reason": "督导员想重新打开"})
    assert refused.status_code == 403
    assert log_in(NT_OFFICER, enrol(NT_OFFICER).now()).status_code == 303
    csrf = form_of(client.get("/console/inbox").text, "/console/logout")["csrf"]
    other = client.post(url + "/reopen", data={"csrf": csrf, "reason": "南台想重新打开"})
    assert other.status_code == 403
    assert "其他派出所" in other.text
    assert Dispatch.objects(id=dispatch.id).first().status == "closed"


def test_an_officer_unlinks_a_report_into_a_clue_of_its_own(client, county, clue, wf):
    dispatch, a, b = clue
    url = f"/console/dispatches/{dispatch.id}"
    page = client.get(url).text
    assert f'<option value="{b}">' in page
    form = form_of(page, url + "/unlink")
    blank = client.post(url + "/unlink", data={**form, "report": b, "reason": ""})
    assert blank.status_code == 422
    assert "拆分须写明原因" in blank.text
    form = form_of(client.get(url).text, url + "/unlink")
    nothing = client.post(url + "/unlink", data={**form, "report": "", "reason": "另一件事"})
    assert nothing.status_code == 422
    assert codes_of(dispatch) == [a, b]

    form = form_of(client.get(url).text, url + "/unlink")
    done = client.post(url + "/unlink", data={**form, "report": b,
                                               "reason": "另一户人家，另一件事"})
    assert done.status_code == 303
    assert codes_of(dispatch) == [a]
    new = Dispatch.objects(report_code=b, station_code=WF).first()
    assert done.headers["Location"] == f"{url}?done=unlink&new={new.id}"
    assert (new.status, codes_of(new)) == ("delivered", [b])
    assert AuditEntry.objects(action="dispatch.unlink").count() == 1
    page = client.get(done.headers["Location"]).text
    assert f'href="/console/dispatches/{new.id}"' in page
    assert 'id="unlink"' not in page  # one report left: nothing to unlink
    again = client.post(url + "/unlink", data={**form, "report": b, "reason": "再拆一次"})
    assert again.status_code == 409  # the same form twice
    # The new clue carries why, readable by the station.
    assert "另一户人家，另一件事" in client.get(f"/console/dispatches/{new.id}").text


def test_unlinking_what_cannot_be_unlinked_is_a_page(client, county, clue, log_in):
    dispatch, a, b = clue
    url = f"/console/dispatches/{dispatch.id}"
    assert log_in(SUPERVISOR).status_code == 303  # the county's supervisor may unlink too
    form = form_of(client.get(url).text, url + "/unlink")
    stranger = client.post(url + "/unlink", data={**form, "report": "R0000000",
                                                   "reason": "不是这条线索的举报"})
    assert stranger.status_code == 409
    assert "这条举报不在本线索中" in stranger.text
    form = form_of(client.get(url).text, url + "/unlink")
    long_code = client.post(url + "/unlink", data={**form, "report": "X" * 17,
                                                    "reason": "不是这条线索的举报"})
    assert long_code.status_code == 422
    form = form_of(client.get(url).text, url + "/unlink")
    assert client.post(url + "/unlink", data={**form, "report": b,
                                               "reason": "另一件事"}).status_code == 303
    new = Dispatch.objects(report_code=b, station_code=WF).first()
    assert new.history[-1]["by"].startswith("supervisor:")
    assert log_in(NT_OFFICER, enrol(NT_OFFICER).now()).status_code == 303
    csrf = form_of(client.get("/console/inbox").text, "/console/logout")["csrf"]
    other = client.post(url + "/unlink", data={"csrf": csrf, "report": a, "reason": "南台"})
    assert other.status_code == 403
    assert codes_of(dispatch) == [a]
