"""People and units as stored: new fields, and documents older than them."""

from __future__ import annotations

import pytest
from mongoengine.errors import ValidationError

from gateway.enrolment.checks import with_active
from gateway.privacy import phonebook
from gateway.records.people import Officer, Reporter
from gateway.records.units import Unit
from grid.documents import Station


def test_documents_written_before_the_new_fields_read_as_active_and_chinese(app):
    phone = "+8613900000001"
    Reporter._get_collection().insert_one({
        "phone": phonebook.seal(phone, phonebook.REPORTER_PHONE),
        "phone_index": phonebook.phone_index(phone), "role": "teacher", "county_code": "530627"})
    Officer._get_collection().insert_one({"name": "老民警", "role": "supervisor",
                                          "county_code": "530627"})
    Station._get_collection().insert_one({"code": "S-OLD", "name": "老所", "county_code": "530627"})
    reporter = Reporter.by_phone(phone).get()
    assert (reporter.active, reporter.language, reporter.unit) == (True, "zh", None)
    officer = Officer.objects(name="老民警").get()
    assert (officer.active, officer.duty) == (True, "supervisor")
    assert Station.objects(code="S-OLD").get().active is True
    # ...and listings of active people and stations find them.
    assert Reporter.objects(**with_active({}, True)).get().id == reporter.id
    assert Officer.objects(**with_active({}, True)).get().id == officer.id
    assert Station.objects(**with_active({"code": "S-OLD"}, True)).count() == 1
    assert Reporter.objects(**with_active({}, False)).count() == 0


@pytest.mark.parametrize(("duty", "access"), [("chief", "officer"), ("duty_officer", "officer"),
                                               ("county_desk", "officer"),
                                               ("supervisor", "supervisor")])
def test_an_officers_access_role_follows_the_duty_role(app, duty, access):
    officer = Officer(name="某", duty_role=duty, county_code="530627",
                      station_code=None if access == "supervisor" else "S1").save()
    assert Officer.objects(id=officer.id).get().role == access


def test_roster_roles_languages_and_unit_types_are_checked(app):
    Reporter(phone="+8613900000002", name="儿童主任", role="child_director", language="bo").save()
    with pytest.raises(ValidationError):
        Reporter(phone="+8613900000003", name="x", role="janitor").save()
    with pytest.raises(ValidationError):
        Reporter(phone="+8613900000004", name="x", role="other", language="fr").save()
    Unit(code="U1", name="一小", type="kindergarten", county_code="530627",
         cell_code="530627001001001").save()
    with pytest.raises(ValidationError):
        Unit(code="U2", name="某", type="bank", county_code="530627", cell_code="1").save()
