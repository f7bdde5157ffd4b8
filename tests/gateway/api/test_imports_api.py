"""The roster by API: an import as a job with progress and an error workbook; the export;
the welcome button."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from gateway.access.tokens import issue_token
from gateway.delivery.outbound_sms import message_text
from gateway.privacy import audit
from gateway.records.imports import ImportFile
from gateway.records.people import Reporter
from sms.records import OutboundMessage
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of, with_sms

ROSTER = ("姓名,手机号,角色,单位,语言\n"
          "甲老师,13912345001,教师,530627-U03,\n"
          "乙老师,0871-65123456,教师,530627-U03,\n"
          "=HYPERLINK(\"http://x\"),13912345002,teacher,530627-U03,en\n").encode("gbk")


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms)


@pytest.fixture
def admin(county):
    return auth(token_of(county, "admin"))


def upload(client, headers, data: bytes = ROSTER, name: str = "roster.csv", **form):
    body = {"file": (io.BytesIO(data), name), "kind": "reporters", **form}
    return client.post("/api/v1/imports", headers=headers, data=body,
                       content_type="multipart/form-data")


def test_an_upload_is_imported_by_a_job_with_per_row_answers_and_an_error_workbook(
        client, admin):
    resp = upload(client, admin, notify="true")
    assert resp.status_code == 202, resp.json
    import_id = resp.json["id"]
    assert resp.json["state"] == "queued"
    assert ImportFile.objects(purpose="upload").count() == 1  # sealed, until the job ran
    assert b"13912345001" not in str(list(ImportFile._get_collection().find())).encode()
    run_jobs()
    done = client.get(f"/api/v1/imports/{import_id}", headers=admin).json
    assert done["state"] == "done"
    assert (done["rows_done"], done["rows_total"]) == (3, 3)
    assert done["summary"] == {"created": 2, "updated": 0, "unchanged": 0, "error": 1}
    assert [(r["row"], r["status"]) for r in done["rows"]] == [
        (2, "created"), (3, "error"), (4, "created")]
    assert done["rows"][1]["errors"][0]["code"] == "not_mobile"
    assert ImportFile.objects(purpose="upload").count() == 0  # the upload is gone
    assert Reporter.by_phone("+8613912345001").get().county_code == "530627"
    welcomes = [message_text(m) for m in OutboundMessage.objects(purpose="welcome")]
    assert len(welcomes) == 2
    book = client.get(f"/api/v1/imports/{import_id}/errors", headers=admin)
    assert book.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(book.data), read_only=True)["reporters"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:3] == ["row", "name", "phone"]
    assert rows[1][0] == 3  # a number stays a number (gateway/enrolment/exports.safe_cell)
    assert rows[1][1] == "乙老师"
    assert "not_mobile" in rows[1][-1]
    other = auth(issue_token("admin", county_code="530602", label="昭阳区管理员"))
    assert client.get(f"/api/v1/imports/{import_id}", headers=other).status_code == 404
    assert client.get(f"/api/v1/imports/{import_id}/errors", headers=other).status_code == 404
    entries = audit.AuditEntry.objects(action="roster.import")
    assert [(e.details["created"], e.details["error"]) for e in entries] == [(2, 1)]


def test_an_unusable_upload_fails_with_one_sentence_and_no_500(client, admin):
    assert upload(client, admin, data=b"").status_code == 422
    resp = upload(client, admin, data="姓名,角色\n张三,teacher\n".encode())
    assert resp.status_code == 202
    run_jobs()
    failed = client.get(f"/api/v1/imports/{resp.json['id']}", headers=admin).json
    assert failed["state"] == "failed"
    assert "手机号" in failed["problem"]
    assert ImportFile.objects.count() == 0
    assert client.post("/api/v1/imports", headers=admin, json={"kind": "reporters"}
                       ).status_code == 422


def test_a_50_mb_upload_is_refused_before_it_is_read(client, admin):
    resp = upload(client, admin, data=b"x" * (50 * 1024 * 1024))
    assert resp.status_code == 413
    assert ImportFile.objects.count() == 0


def test_the_export_escapes_formulas_and_imports_back_unchanged(client, admin, run):
    upload(client, admin)
    run_jobs()
    resp = client.get("/api/v1/roster/export?kind=reporters&format=csv", headers=admin)
    assert resp.status_code == 200
    text = resp.data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["name", "phone", "role", "unit", "grid_code", "language"]
    names = {r[0] for r in rows[1:]}
    assert "'=HYPERLINK(\"http://x\")" in names
    assert all(not c.startswith(("=", "+", "-", "@")) for r in rows for c in r)
    xlsx = client.get("/api/v1/roster/export?kind=reporters", headers=admin)
    book = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    assert all(c.data_type != "f" for r in book["reporters"].iter_rows() for c in r)
    assert audit.AuditEntry.objects(action="roster.export").count() == 2
    other = auth(issue_token("admin", county_code="530602", label="昭阳区管理员"))
    assert client.get("/api/v1/roster/export?kind=reporters&county=530627",
                      headers=other).status_code == 403


def test_the_welcome_button_texts_the_reporter_in_their_language(client, admin):
    reporter = Reporter.by_phone("+8613800001010").get()  # 吴静, English
    resp = client.post(f"/api/v1/reporters/{reporter.id}/welcome", headers=admin)
    assert resp.status_code == 202
    assert resp.json == {"queued": True}
    texts = [message_text(m) for m in OutboundMessage.objects(purpose="welcome")]
    assert len(texts) == 1
    assert "城北宾馆" in texts[0]
    assert "enrol" in texts[0].lower()
    client.post(f"/api/v1/reporters/{reporter.id}/deactivate", headers=admin)
    assert client.post(f"/api/v1/reporters/{reporter.id}/welcome",
                       headers=admin).status_code == 409


def test_a_form_field_without_a_usable_name_is_a_422_not_a_500(client, admin):
    """A multipart field named "\r" reaches the form parser with no name (None): its
    "unknown field" error is answered as JSON with the name as text."""
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nnull\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"\r\"\r\n\r\nnull\r\n"
            f"--{boundary}--\r\n").encode()
    resp = client.post("/api/v1/imports", headers=admin, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")
    assert resp.status_code == 422, resp.data
    assert resp.json["code"] == 422
    assert all(isinstance(key, str) for key in resp.json["errors"]["form"])
