"""`safegrid people …` and `safegrid units …`: the operators' enrolment commands."""

from __future__ import annotations

from gateway.privacy import audit
from gateway.records.people import Officer, Reporter
from gateway.records.units import Unit
from gateway.sample import cell_code


def test_people_add_show_deactivate_reactivate_erase(run, county):
    added = run("people", "add", "--kind", "reporter", "--name", "马老师",
                "--phone", "13912340001", "--role", "teacher", "--county", "530627",
                "--unit", "530627-U03", "--language", "bo")
    assert added.exit_code == 0, added.output
    reporter = Reporter.by_phone("+8613912340001").get()
    assert (reporter.unit, reporter.language, reporter.active) == ("530627-U03", "bo", True)
    shown = run("people", "show", "--phone", "+8613912340001")
    assert "马老师" in shown.output
    assert "phone: +8613912340001" in shown.output
    listed = run("people", "list", "--role", "teacher")
    assert str(reporter.id) in listed.output
    assert "+86139****0001" in listed.output  # masked in lists
    assert "马老师" not in listed.output
    assert run("people", "deactivate", "--phone", "13912340001").exit_code == 0
    assert Reporter.objects(id=reporter.id).get().active is False
    assert run("people", "reactivate", "--id", str(reporter.id)).exit_code == 0
    assert Reporter.objects(id=reporter.id).get().active is True
    erased = run("people", "erase", "--phone", "13912340001", "--yes")
    assert erased.exit_code == 0, erased.output
    assert Reporter.objects(id=reporter.id).get().name is None
    actions = [e.action for e in audit.AuditEntry.objects(subject=f"reporter:{reporter.id}")]
    assert actions == ["reporter.enrol", "reporter.read", "reporter.deactivate",
                       "reporter.reactivate", "reporter.erase"]
    assert all(e.actor.startswith("cli:") for e in audit.AuditEntry.objects)


def test_officers_are_added_with_a_duty_role(run, county):
    added = run("people", "add", "--kind", "officer", "--name", "南台所长",
                "--phone", "13912340002", "--role", "chief", "--county", "530627",
                "--station", "530627-NT")
    assert added.exit_code == 0, added.output
    officer = Officer.by_phone("+8613912340002").get()
    assert (officer.duty_role, officer.role) == ("chief", "officer")
    assert "chief" in run("people", "list", "--kind", "officers", "--station",
                          "530627-NT").output


def test_refusals_are_one_sentence_and_exit_2(run, county):
    taken = run("people", "add", "--kind", "reporter", "--name", "某", "--phone",
                "+8613800003001", "--role", "teacher", "--county", "530627")
    assert taken.exit_code == 2
    assert "phone_taken" in taken.output
    assert "+8613800003001" not in taken.output
    landline = run("people", "add", "--kind", "reporter", "--name", "某", "--phone",
                   "0871-65123456", "--role", "nurse", "--county", "530627")
    assert landline.exit_code == 2
    assert "not_mobile" in landline.output
    assert "unknown_role" in landline.output
    assert run("people", "deactivate", "--phone", "13912349999").exit_code == 2
    assert run("units", "add", "--code", "X", "--name", "某", "--type", "school",
               "--cell", "530627999999999").exit_code == 2


def test_units_add_list_deactivate(run, county):
    added = run("units", "add", "--code", "91530627MA6K000001", "--name", "第二幼儿园",
                "--type", "kindergarten", "--cell", cell_code(1, 0, 0))
    assert added.exit_code == 0, added.output
    assert Unit.objects(code="91530627MA6K000001").get().county_code == "530627"
    assert "第二幼儿园" in run("units", "list", "--type", "kindergarten").output
    assert run("units", "deactivate", "91530627MA6K000001").exit_code == 0
    assert Unit.objects(code="91530627MA6K000001").get().active is False
    assert "第二幼儿园" not in run("units", "list", "--active").output
    assert audit.AuditEntry.objects(action="unit.deactivate").count() == 1


def test_tokens_are_not_issued_to_deactivated_people_and_admin_tokens_name_a_county(
        run, county):
    from gateway.access.tokens import principal_for

    assert run("people", "deactivate", "--phone", "+8613800001003").exit_code == 0
    refused = run("token", "--role", "reporter", "--phone", "+8613800001003")
    assert refused.exit_code == 1
    assert "not deactivated" in refused.output
    assert run("token", "--role", "admin", "--county", "5306", "--label", "x").exit_code == 1
    issued = run("token", "--role", "admin", "--county", "530627", "--label", "县管理员")
    assert principal_for(issued.output.strip(), 0).county_code == "530627"
