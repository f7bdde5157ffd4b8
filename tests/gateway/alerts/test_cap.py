"""Every step of an alert as CAP 1.2, valid against OASIS's schema; the Atom feed.

CAP-v1.2.xsd beside this file is OASIS's schema as published at
http://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2.xsd (Copyright OASIS Open 2010).
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema

from gateway.alerts.fanout import open_ring
from tests.gateway.alerts.test_fanout import issue
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of

SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("CAP-v1.2.xsd"))
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"


def cap_of(client, code: str) -> ET.Element:
    resp = client.get(f"/api/v1/alerts/{code}/cap.xml")
    assert resp.status_code == 200
    assert resp.mimetype == "application/cap+xml"
    SCHEMA.validate(resp.data)  # raises with the reason when invalid
    return ET.fromstring(resp.data)  # noqa: S314 - this server's own answer


def text(root: ET.Element, path: str) -> str | None:
    found = root.find(path.replace("cap:", CAP))
    return found.text if found is not None else None


def test_each_step_is_a_valid_cap_message(client, county):
    code = issue(client, county)
    run_jobs()
    first = cap_of(client, code)
    assert text(first, "cap:msgType") == "Alert"
    assert text(first, "cap:scope") == "Public"
    assert text(first, "cap:references") is None
    assert text(first, "cap:info/cap:category") == "Rescue"
    assert text(first, "cap:info/cap:urgency") == "Immediate"
    assert text(first, "cap:info/cap:description").startswith("男孩约5岁，红上衣，")
    circles = [c.text for c in first.iter(f"{CAP}circle")]
    assert len(circles) == 1
    assert circles[0].endswith(" 1")  # the first ring: 1 km
    assert "photo" not in ET.tostring(first, encoding="unicode")
    open_ring(code, 1)
    assert [c.text.split()[1] for c in cap_of(client, code).iter(f"{CAP}circle")] == ["1", "10"]

    supervisor = auth(token_of(county, "supervisor"))
    client.post(f"/api/v1/alerts/{code}/update", headers=supervisor, json={"text": "改穿蓝色外套"})
    update = cap_of(client, code)
    assert text(update, "cap:msgType") == "Update"
    assert text(update, "cap:references").split(",")[1] == text(first, "cap:identifier")
    assert text(update, "cap:identifier") != text(first, "cap:identifier")
    assert "改穿蓝色外套" in text(update, "cap:info/cap:description")

    client.post(f"/api/v1/alerts/{code}/found", headers=supervisor)
    found = cap_of(client, code)
    assert text(found, "cap:msgType") == "Update"
    assert text(found, "cap:info/cap:responseType") == "AllClear"
    assert text(found, "cap:info/cap:urgency") == "Past"


def test_a_cancellation_is_a_valid_cap_cancel(client, county):
    code = issue(client, county)
    client.post(f"/api/v1/alerts/{code}/cancel", headers=auth(token_of(county, "supervisor")),
                json={"reason": "误报"})
    cancel = cap_of(client, code)
    assert text(cancel, "cap:msgType") == "Cancel"
    assert text(cancel, "cap:references") is not None


def test_an_unknown_alert_has_no_cap_document(client, county):
    resp = client.get("/api/v1/alerts/999999/cap.xml")
    assert resp.status_code == 404
    assert resp.json["message"] == "no alert 999999"


def test_the_schema_refuses_what_cap_forbids():
    # The check is real: the schema refuses a CAP message with a bad msgType.
    bad = (b'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="urn:oasis:names:tc:emergency:'
           b'cap:1.2"><identifier>x</identifier><sender>s</sender><sent>2026-12-05T10:00:00'
           b'+08:00</sent><status>Actual</status><msgType>Found</msgType><scope>Public</scope>'
           b'</alert>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        SCHEMA.validate(bad)


def test_the_atom_feed_lists_open_alerts_with_their_cap_links(client, county):
    empty = client.get("/cap/alerts.atom")
    assert empty.status_code == 200
    assert empty.mimetype == "application/atom+xml"
    assert ET.fromstring(empty.data).findall(f"{ATOM}entry") == []  # noqa: S314 - ours
    open_code = issue(client, county)
    ended = issue(client, county)
    client.post(f"/api/v1/alerts/{ended}/found", headers=auth(token_of(county, "supervisor")))
    feed = ET.fromstring(client.get("/cap/alerts.atom").data)  # noqa: S314 - ours
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{required}") is not None
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    link = entries[0].find(f"{ATOM}link")
    assert link.get("type") == "application/cap+xml"
    assert link.get("href").endswith(f"/api/v1/alerts/{open_code}/cap.xml")
    path = link.get("href").split("://", 1)[1].split("/", 1)[1]
    SCHEMA.validate(client.get(f"/{path}").data)
