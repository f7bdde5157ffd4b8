"""Open311 GeoReport v2: discovery, services, filing and reading back, bad input, keys."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from gateway.intake import open311
from gateway.privacy.audit import AuditEntry
from gateway.privacy.crypto import is_encrypted
from gateway.records.people import Reporter
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Dispatch, GridCell
from tests.gateway.api.test_reports_api import post as post_app_report
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, cell_centre, token_of

BASE = "/open311/v2"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
W3 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")
SERVICE_KEYS = ["service_code", "service_name", "description", "metadata", "type", "keywords",
                "group"]
REQUEST_KEYS = ["service_request_id", "status", "status_notes", "service_name", "service_code",
                "description", "agency_responsible", "service_notice", "requested_datetime",
                "updated_datetime", "expected_datetime", "address", "address_id", "zipcode",
                "lat", "long", "media_url"]


@pytest.fixture
def api_key(county):
    key, _ = open311.issue_key("FixMyStreet 镇雄", None, "test")
    return key


def spec_example(api_key: str, lat: float, lon: float, /, **changes: str) -> dict[str, str]:
    """The spec's example POST, field for field, with this county's place and a category."""
    form = {
        "api_key": api_key, "jurisdiction_id": "530627", "service_code": "CHILD",
        "lat": str(lat), "long": str(lon), "address_string": "泼机镇泼机村",
        "email": "smit333@example.cn", "device_id": "tt222111", "account_id": "123456",
        "first_name": "john", "last_name": "smith", "phone": "13912345678",
        "description": "穿红衣男孩被陌生人抱上面包车",
        "media_url": "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
        "attribute[WHISPAWN]": "123456", "attribute[WHISDORN]": "COISL001",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def file(client, form: dict[str, str], fmt: str = "json"):
    return client.post(f"{BASE}/requests.{fmt}", data=urlencode(form), content_type=FORM)


def point(grid: tuple[int, int, int] = (2, 1, 3)) -> tuple[float, float]:
    return cell_centre(GridCell.objects(code=cell_code(*grid)).first().ring)


def xml_of(resp) -> ET.Element:
    assert resp.content_type == "text/xml; charset=utf-8"
    assert resp.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(resp.data)  # noqa: S314 - our own server's answer, in a test


def shape(element: ET.Element) -> list:
    """An XML tree as (tag, text or children) pairs, for comparing structure and values."""
    return [(child.tag, shape(child) if len(child) else (child.text or ""))
            for child in element]


# --- Discovery and services ---------------------------------------------------------------


def test_discovery_in_json_and_xml(client, county):
    doc = client.get(f"{BASE}/discovery.json").json
    assert list(doc) == ["changeset", "contact", "key_service", "endpoints"]
    assert "530627" in doc["contact"]  # the jurisdiction_ids served
    assert doc["endpoints"] == [{
        "specification": "http://wiki.open311.org/GeoReport_v2",
        "url": "http://localhost/open311/v2", "changeset": doc["changeset"],
        "type": "production", "formats": ["text/xml", "application/json"]}]
    root = xml_of(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    endpoint = root.find("endpoints/endpoint")
    assert [f.text for f in endpoint.findall("formats/format")] == [
        "text/xml", "application/json"]
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"


def test_services_are_the_categories_in_json_and_xml(client, county):
    services = client.get(f"{BASE}/services.json").json
    assert [s["service_code"] for s in services] == [
        "CHILD", "ORIGIN", "ABUSE", "WOMAN", "LABOUR", "ADOPT", "BIRTH", "ONLINE", "OTHER"]
    assert all(list(s) == SERVICE_KEYS for s in services)
    assert services[0] == {"service_code": "CHILD", "service_name": "拐卖儿童",
                           "description": "儿童被拐骗、抢夺、拐卖的线索", "metadata": False,
                           "type": "realtime", "keywords": "CHILD", "group": "反拐"}
    root = xml_of(client.get(f"{BASE}/services.xml?jurisdiction_id=530627"))
    assert root.tag == "services"
    assert shape(root)[0] == ("service", [
        ("service_code", "CHILD"), ("service_name", "拐卖儿童"),
        ("description", "儿童被拐骗、抢夺、拐卖的线索"), ("metadata", "false"),
        ("type", "realtime"), ("keywords", "CHILD"), ("group", "反拐")])


def test_service_definition_has_no_attributes(client, county):
    assert client.get(f"{BASE}/services/WOMAN.json").json == {
        "service_code": "WOMAN", "attributes": []}
    root = xml_of(client.get(f"{BASE}/services/WOMAN.xml"))
    assert (root.tag, shape(root)) == ("service_definition",
                                      [("service_code", "WOMAN"), ("attributes", "")])
    missing = client.get(f"{BASE}/services/NOPE.json")
    assert missing.status_code == 404
    assert missing.json == [{"code": 404, "description": "service_code provided was not found"}]


# --- Filing and reading back --------------------------------------------------------------


def test_a_request_filed_as_the_spec_example_is_read_back_in_json(client, api_key):
    lat, lon = point()
    resp = file(client, spec_example(api_key, lat, lon))
    assert resp.status_code == 200, resp.text
    assert resp.content_type == "application/json; charset=utf-8"
    [answer] = resp.json
    code = answer["service_request_id"]
    assert answer == {"service_request_id": code, "service_notice": open311.SERVICE_NOTICE,
                      "account_id": None}
    # Stored before it was answered: a public tip, waiting for the route job.
    report = Report.objects(code=code).first()
    assert (report.status, report.source, report.trust) == ("received", "open311", "public")
    assert AuditEntry.objects(action="open311.request", subject=code).count() == 1
    run_jobs()
    [read] = client.get(f"{BASE}/requests/{code}.json", query_string={"api_key": api_key}).json
    assert list(read) == REQUEST_KEYS
    assert W3.match(read["requested_datetime"])
    assert W3.match(read["updated_datetime"])
    assert read == {
        "service_request_id": code, "status": "open", "status_notes": None,
        "service_name": "拐卖儿童", "service_code": "CHILD", "description": None,
        "agency_responsible": "泼机派出所", "service_notice": None,
        "requested_datetime": read["requested_datetime"],
        "updated_datetime": read["updated_datetime"], "expected_datetime": None,
        "address": None, "address_id": None, "zipcode": None, "lat": None, "long": None,
        "media_url": None,
    }
    listed = client.get(f"{BASE}/requests.json", query_string={"api_key": api_key}).json
    assert listed == [read]


def test_a_request_filed_as_the_spec_example_is_read_back_in_xml(client, api_key):
    lat, lon = point()
    resp = file(client, spec_example(api_key, lat, lon), fmt="xml")
    assert resp.status_code == 200, resp.text
    root = xml_of(resp)
    assert root.tag == "service_requests"
    code = root.findtext("request/service_request_id")
    assert shape(root) == [("request", [("service_request_id", code),
                                        ("service_notice", open311.SERVICE_NOTICE),
                                        ("account_id", "")])]
    root = xml_of(client.get(f"{BASE}/requests/{code}.xml", query_string={"api_key": api_key}))
    [(tag, fields)] = shape(root)
    assert tag == "request"
    assert [name for name, _ in fields] == REQUEST_KEYS
    values = dict(fields)
    assert (values["service_request_id"], values["status"], values["service_code"],
            values["agency_responsible"], values["lat"], values["description"]) == (
        code, "open", "CHILD", "", "", "")  # not routed yet: no station named
    listed = xml_of(client.get(f"{BASE}/requests.xml",
                               query_string={"api_key": api_key, "status": "open"}))
    assert [r.findtext("service_request_id") for r in listed] == [code]


def test_a_posted_request_is_routed_to_the_station_of_its_point(client, api_key):
    lat, lon = point((1, 2, 0))
    code = file(client, spec_example(api_key, lat, lon, service_code="WOMAN")).json[0][
        "service_request_id"]
    run_jobs()
    report = Report.objects(code=code).first()
    assert (report.status, report.station_code, report.cell_code) == (
        "routed", "530627-NT", cell_code(1, 2, 0))
    assert [d.station_code for d in Dispatch.objects(report_id=report.id)] == ["530627-NT"]


def test_an_address_string_is_located_by_the_route_job(client, api_key):
    form = spec_example(api_key, 0, 0, address_string="镇雄县泼机镇黑树村",
                        description="有人收买外地妇女")
    del form["lat"], form["long"]
    code = file(client, form).json[0]["service_request_id"]
    assert Report.objects(code=code).first().location is None  # stored as sent, then located
    run_jobs()
    report = Report.objects(code=code).first()
    assert report.station_code == "530627-PJ"
    assert report.placed_by == "gazetteer"
    assert report.cell_code.startswith("530627101003")  # a cell of 黑树村


def test_contact_fields_are_sealed_and_never_attach_to_a_registered_reporter(client, api_key):
    lat, lon = point()
    registered = "+8613800001001"  # 张秀英, a registered grid worker
    code = file(client, spec_example(api_key, lat, lon, phone=registered)).json[0][
        "service_request_id"]
    raw = Report._get_collection().find_one({"code": code})
    assert is_encrypted(raw["open311"]["contact"])
    stored_text = json.dumps(raw, default=str)
    assert "smith" not in stored_text
    assert registered not in stored_text
    stored = Report.objects(code=code).first()
    assert json.loads(stored.open311.contact)["phone"] == registered
    assert stored.reporter_id != Reporter.by_phone(registered).get().id
    assert Reporter.objects(id=stored.reporter_id).get().role == "public"


def test_a_retried_post_files_once(client, api_key):
    lat, lon = point()
    first = file(client, spec_example(api_key, lat, lon)).json
    assert file(client, spec_example(api_key, lat, lon)).json == first
    assert Report.objects(source="open311").count() == 1


def test_a_key_reads_only_its_own_requests(client, county, api_key):
    lat, lon = point()
    code = file(client, spec_example(api_key, lat, lon)).json[0]["service_request_id"]
    other, _ = open311.issue_key("SeeClickFix", "530627", "test")
    assert client.get(f"{BASE}/requests.json", query_string={"api_key": other}).json == []
    theirs = client.get(f"{BASE}/requests/{code}.json", query_string={"api_key": other})
    assert theirs.status_code == 404
    assert theirs.json == [{"code": 404,
                            "description": "service_request_id provided was not found"}]
    # A report from the app is never an Open311 request, whoever asks.
    app = post_app_report(client, auth(token_of(county, "reporter 张秀英")),
                          grid_code=cell_code(0, 0, 0)).json["code"]
    assert client.get(f"{BASE}/requests/{app}.json",
                      query_string={"api_key": api_key}).status_code == 404
    assert client.get(f"{BASE}/requests/{code}.json").status_code == 403  # no key, no read


def test_filters_and_a_closed_case_reads_closed_without_its_outcome(client, api_key):
    lat, lon = point()
    code = file(client, spec_example(api_key, lat, lon)).json[0]["service_request_id"]
    Report.objects(code=code).update_one(set__status="closed", set__outcome="rescued")
    [read] = client.get(f"{BASE}/requests.json",
                        query_string={"api_key": api_key, "status": "closed"}).json
    assert (read["status"], read["status_notes"]) == ("closed", None)
    for query in ({"status": "open"}, {"service_code": "WOMAN"},
                  {"start_date": "2010-01-01T00:00:00Z", "end_date": "2010-02-01T00:00:00Z"}):
        assert client.get(f"{BASE}/requests.json",
                          query_string={"api_key": api_key, **query}).json == [], query
    both = client.get(f"{BASE}/requests.json", query_string={
        "api_key": api_key, "service_request_id": f"{code},R0000000", "status": "open"}).json
    assert [r["service_request_id"] for r in both] == [code]  # the id overrides the rest


# --- Bad input ------------------------------------------------------------------------------


BAD = [
    ("no service_code", {"service_code": ""}, 400, "service_code was not provided"),
    ("unknown service", {"service_code": "PUPPIES"}, 404, "service_code provided was not found"),
    ("lat without long", {"long": ""}, 400, "lat and long must be sent together"),
    ("lat not a number", {"lat": "north"}, 400, "lat is not a number"),
    ("no location", {"lat": "", "long": "", "address_string": ""}, 400,
     "a location was not provided: send lat and long, or address_string"),
    ("another county", {"jurisdiction_id": "530628"}, 404,
     "jurisdiction_id provided was not found"),
    ("a description over 4000 characters", {"description": "拐" * 4001}, 400,
     "description is longer than 4000 characters"),
    ("invalid api_key", {"api_key": "o311_guessed"}, 403, open311.INVALID_KEY),
    ("no api_key", {"api_key": ""}, 403, open311.INVALID_KEY),
]


@pytest.mark.parametrize(("case", "changes", "status", "description"), BAD,
                         ids=[case for case, *_ in BAD])
def test_bad_requests_get_the_spec_error_list(client, api_key, case, changes, status,
                                              description):
    lat, lon = point()
    form = spec_example(api_key, lat, lon, **changes)
    resp = file(client, form)
    assert resp.status_code == status, resp.text
    assert resp.json == [{"code": status, "description": description}]
    root = xml_of(file(client, form, fmt="xml"))
    assert (root.tag, shape(root)) == (
        "errors", [("error", [("code", str(status)), ("description", description)])])
    assert Report.objects(source="open311").count() == 0


def test_a_one_megabyte_description_is_413_before_parsing(client, api_key):
    lat, lon = point()
    resp = file(client, spec_example(api_key, lat, lon, description="x" * 1_000_000), "xml")
    assert resp.status_code == 413
    [(tag, fields)] = shape(xml_of(resp))
    assert (tag, fields[0]) == ("error", ("code", "413"))


def test_a_json_body_is_refused(client, api_key):
    resp = client.post(f"{BASE}/requests.json", json={"api_key": api_key})
    assert resp.status_code == 400
    assert resp.json[0]["code"] == 400


def test_a_key_of_one_county_may_not_name_another(county, monkeypatch):
    key, stored = open311.issue_key("county key", "530627", "test")
    monkeypatch.setattr(open311, "served_counties", lambda: ["530627", "530628"])
    with pytest.raises(open311.Refusal) as refused:
        open311.jurisdiction("530628", stored)
    assert refused.value.status == 403
    assert open311.jurisdiction(None, stored) == "530627"
    with pytest.raises(open311.Refusal) as unnamed:
        open311.jurisdiction(None, None)
    assert unnamed.value.status == 400


# --- Keys: CLI, revocation, rate limit ------------------------------------------------------


def test_key_cli_issues_lists_and_revokes(client, county, run):
    issued = run("open311", "key", "issue", "--label", "FixMyStreet 镇雄", "--county", "530627")
    assert issued.exit_code == 0, issued.output
    key_id = re.search(r"^id: (\w+)$", issued.output, re.M).group(1)
    api_key = re.search(r"^api_key: (o311_\S+)$", issued.output, re.M).group(1)
    lat, lon = point()
    assert file(client, spec_example(api_key, lat, lon)).status_code == 200
    listed = run("open311", "key", "list").output
    assert key_id in listed
    assert "FixMyStreet 镇雄" in listed
    assert api_key not in listed
    assert run("open311", "key", "revoke", key_id).exit_code == 0
    refused = file(client, spec_example(api_key, lat, lon, description="again"))
    assert refused.status_code == 403
    assert refused.json == [{"code": 403, "description": open311.INVALID_KEY}]
    assert "revoked" in run("open311", "key", "list").output
    assert run("open311", "key", "revoke", key_id).exit_code != 0  # not active any more
    actions = [e.action for e in AuditEntry.objects(subject=f"open311-key:{key_id}")]
    assert actions == ["open311.key.issue", "open311.key.revoke"]
    assert run("open311", "key", "issue", "--label", "x", "--county", "110101").exit_code != 0


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(open311_requests_per_key_hour=2)


def test_each_key_has_its_own_hourly_budget(client, api_key):
    lat, lon = point()
    for n in range(2):
        assert file(client, spec_example(api_key, lat, lon, description=f"第{n}条")).status_code \
            == 200
    over = file(client, spec_example(api_key, lat, lon, description="第3条"))
    assert over.status_code == 429
    assert int(over.headers["Retry-After"]) > 0
    assert over.json[0]["code"] == 429
    other, _ = open311.issue_key("another client", None, "test")
    assert file(client, spec_example(other, lat, lon, description="第3条")).status_code == 200
    assert Report.objects(source="open311").count() == 3


def test_breaking_the_glass_shows_the_contact_the_client_sent(client, county, api_key):
    lat, lon = point()
    code = file(client, spec_example(api_key, lat, lon)).json[0]["service_request_id"]
    run_jobs()
    report = Report.objects(code=code).first()
    dispatch = Dispatch.objects(report_id=report.id, station_code="530627-PJ").get()
    officer = auth(token_of(county, "officer 泼机派出所"))
    read = client.get(f"/api/v1/dispatches/{dispatch.id}/reports", headers=officer).json
    assert (read[0]["reporter_role"], read[0]["source"]) == ("public", "open311")
    assert "contact" not in read[0]  # sealed until the glass is broken
    resp = client.post(f"/api/v1/dispatches/{dispatch.id}/unseal", headers=officer,
                       json={"reason": "需要联系举报人核实车辆去向"})
    assert resp.status_code == 200, resp.json
    [identity] = resp.json
    assert (identity["name"], identity["phone"]) == ("john smith", "13912345678")
    assert identity["contact"] == {"first_name": "john", "last_name": "smith",
                                   "email": "smit333@example.cn", "phone": "13912345678",
                                   "device_id": "tt222111", "account_id": "123456"}


@pytest.mark.parametrize("body", [
    "description=%ED%A0%80&service_code=CHILD&lat=27.4&long=104.9",  # a lone surrogate in UTF-8
    "description=%FF%FE%00&service_code=CHILD&lat=27.4&long=104.9",  # not UTF-8, and a NUL
    "service_code=%00&lat=27.4&long=104.9",
    "service_code=CHILD&lat=nan&long=104.9",
    "service_code=CHILD&lat=1e400&long=104.9",
    "service_code=CHILD&address_id=545483",
    "service_code=CHILD&lat=27.4&long=104.9&jurisdiction_id=%3Cx%3E",
])
def test_odd_bodies_are_answered_never_a_500(client, api_key, body):
    resp = client.post(f"{BASE}/requests.xml", data=f"api_key={api_key}&{body}",
                       content_type=FORM)
    assert resp.status_code in {200, 400, 404}, resp.text
    root = xml_of(resp)
    assert root.tag == ("service_requests" if resp.status_code == 200 else "errors")


def test_an_unknown_resource_is_404_in_the_spec_format(client, county):
    resp = client.get(f"{BASE}/tokens/12345.json")
    assert resp.status_code == 404
    assert resp.json == [{"code": 404, "description": "no such Open311 resource (see "
                                                      "discovery.json)"}]
    assert xml_of(client.get(f"{BASE}/services.html.xml")).tag == "errors"
    assert client.get(f"{BASE}/services.json").status_code == 200  # the real ones still win
