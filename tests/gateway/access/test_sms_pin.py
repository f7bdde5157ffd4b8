"""The optional SMS PIN: without a good one a registered phone's report is an unverified tip."""

from __future__ import annotations

import re

import pytest

from gateway import gridcache, startup
from gateway.access import sms_pin
from gateway.intake.inbound_sms import unseal
from gateway.privacy import audit
from gateway.records.people import Reporter
from gateway.records.reports import Report
from sms import replies
from sms.records import InboundMessage
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.intake.test_inbound_sms import REGISTERED, SECRET, mo
from tests.helpers import texts_to, with_sms


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, SECRET, kannel_password="pw",
                    sms_pin_required=True, sms_pin_max_failures=3)


def reporter() -> Reporter:
    return Reporter.by_phone(REGISTERED).get()


def last_report() -> Report:
    return Report.objects.order_by("-created_at").first()


def test_a_report_without_the_pin_is_filed_as_an_unverified_tip(client, county):
    mo(client, "R 1 @530627001002003 男孩被抱上面包车")
    run_jobs()
    report = last_report()
    assert (report.trust, report.flags) == ("public", ["pin_not_set"])
    assert report.reporter_id == reporter().id  # still placed by the reporter's own grid
    sms_pin.issue(reporter())
    mo(client, "R 1 @530627001002003 又看到那辆面包车")
    run_jobs()
    report = last_report()
    assert (report.trust, report.flags) == ("public", ["pin_missing"])
    texts = texts_to(REGISTERED)
    assert texts[-1] == replies.pin_problem("pin_missing")
    assert texts[-2].startswith(f"已收到举报{report.code}")  # the receipt comes first


def test_the_right_pin_makes_it_a_mandated_report_and_is_never_stored_in_details(client, county):
    pin = sms_pin.issue(reporter())
    mo(client, f"P{pin} R 1 @530627001002003 男孩被抱上面包车")
    run_jobs()
    report = last_report()
    assert (report.trust, report.flags, report.category) == ("mandated", [], "CHILD")
    assert pin not in report.details
    assert report.details == "男孩被抱上面包车"
    assert all(not t.startswith("请在短信开头") for t in texts_to(REGISTERED))


def test_wrong_pins_lock_the_check_so_pins_cannot_be_guessed_by_sms(client, county):
    pin = sms_pin.issue(reporter())
    wrong = f"{(int(pin) + 1) % 10**6:06d}"
    for _ in range(3):
        mo(client, f"P{wrong} R 1 猜口令")
    mo(client, f"P{pin} R 1 口令对了但已锁定")
    run_jobs()
    flags = [r.flags for r in Report.objects.order_by("created_at")]
    assert flags == [["pin_wrong"]] * 3 + [["pin_locked"]]
    assert texts_to(REGISTERED)[-1] == replies.pin_problem("pin_locked")
    sms_pin.issue(reporter())  # a new PIN from the administrator lifts the lock
    fresh = sms_pin.issue(reporter())
    mo(client, f"P{fresh} R 1 新口令")
    run_jobs()
    assert last_report().trust == "mandated"


def test_status_needs_the_pin_so_a_spoofed_number_learns_nothing(client, county):
    pin = sms_pin.issue(reporter())
    mo(client, f"P{pin} R 1 test", ucs2=False)
    run_jobs()
    code = last_report().code
    mo(client, f"Q {code}", ucs2=False)
    run_jobs()
    assert texts_to(REGISTERED)[-1] == replies.pin_problem("pin_missing")
    mo(client, f"P{pin} Q {code}", ucs2=False)
    run_jobs()
    station = gridcache.current().stations[last_report().station_code].name
    assert texts_to(REGISTERED)[-1] == replies.status(code, "routed", station)


def test_the_raw_message_keeps_everything_sealed(client, county):
    pin = sms_pin.issue(reporter())
    mo(client, f"P{pin} R 1 test", ucs2=False)
    run_jobs()
    stored = InboundMessage.objects.first()
    assert unseal(stored.text).startswith(f"P{pin}")  # nothing received is lost
    assert pin not in str(InboundMessage._get_collection().find_one())  # but sealed


def test_the_cli_issues_a_pin_once_audited_and_can_remove_it(client, county, run):
    result = run("pin", "--phone", "13800001001")
    assert result.exit_code == 0, result.output
    pin = re.search(r"new SMS PIN: (\d{6})", result.output).group(1)
    assert sms_pin.problem(reporter(), REGISTERED, pin) is None
    assert audit.AuditEntry.objects(action="reporter.sms_pin_issue").count() == 1
    assert run("pin", "--phone", "13800001001", "--clear").output.strip() == "PIN removed"
    assert sms_pin.problem(reporter(), REGISTERED, pin) == "pin_not_set"
    unknown = run("pin", "--phone", "+8613999999999")
    assert unknown.exit_code == 1
    assert "no registered reporter" in unknown.output


def test_without_the_setting_a_pin_is_still_taken_off_the_details(client, county, app):
    from gateway import runtime

    startup.configure(runtime.settings().with_(sms_pin_required=False))
    mo(client, "P1234 R 1 没有要求口令")
    run_jobs()
    report = last_report()
    assert (report.trust, report.flags, report.details) == ("mandated", [], "没有要求口令")
