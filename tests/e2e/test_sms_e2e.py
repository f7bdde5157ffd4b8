"""SMS end to end: fakesmsc (the carrier) → real Kannel → gunicorn → RQ worker → Kannel → fakesmsc.

A Chinese (UCS-2) report and a digits-only report texted from feature phones
become routed reports, and the receipts that come back to fakesmsc carry the
right report codes and station names. The station's duty phone gets a notice.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from gateway.records.reports import Report
from sms.records import InboundMessage
from tests.e2e.sms_app import SHORT_CODE, Handset

pytestmark = pytest.mark.e2e

def test_texted_reports_are_routed_and_receipted_through_kannel(sms_stack):
    _, carrier = sms_stack
    teacher = "+8613800001003"  # 王丽, 镇雄县第一小学
    carrier.send_mo(teacher, SHORT_CODE, "举报 拐卖儿童 校门口陌生人抱走一个哭闹的女孩", ucs2=True)
    grid_worker = "+8613800001002"  # 李国强, 泼机村
    carrier.send_mo(grid_worker, SHORT_CODE, "1 1 530627101003002 boy taken into white van")

    handsets = Handset(carrier)
    [chinese_receipt] = handsets.texts_to(teacher, 1)
    [digits_receipt] = handsets.texts_to(grid_worker, 1)

    by_details = {r.details: r for r in Report.objects(source="sms")}  # details are encrypted
    chinese = by_details.get("校门口陌生人抱走一个哭闹的女孩")
    assert chinese is not None
    assert chinese.category == "CHILD"
    assert chinese_receipt == f"已收到举报{chinese.code}，已转交乌峰派出所。"

    digits = by_details.get("boy taken into white van")
    assert digits is not None
    assert digits.cell_code == "530627101003002"
    assert digits.station_code == "530627-PJ"
    code = re.search(r"R[0-9A-Z]{6}", digits_receipt).group(0)
    assert code == digits.code
    assert "泼机派出所" in digits_receipt

    assert InboundMessage.objects(state="handled").count() == 2
    # Each station's duty phone got a notice with the code and nothing personal.
    [notice] = handsets.texts_to("+8613800002003", 1)
    assert notice.startswith(f"新线索{digits.code}")
    assert "boy" not in notice


def test_logs_carry_no_phone_numbers_or_names(sms_stack):
    """SafeGrid's own logs (gunicorn, the worker) after a texted report: no phones, no names."""
    stack, carrier = sms_stack
    phone = "+8613800001004"  # 陈建华, teacher
    carrier.send_mo(phone, SHORT_CODE, "举报 拐卖儿童 陈建华老师发现校外有人尾随学生", ucs2=True)
    Handset(carrier).texts_to(phone, 1)
    time.sleep(0.5)  # let the last log lines reach the files
    logs = "\n".join(s.log_path.read_text(errors="replace") for s in stack.services
                     if s.name.startswith(("gunicorn", "worker")) and s.log_path)
    assert "sms/inbound/kannel" in logs  # the logs were read and do cover the request
    for secret in ("13800001004", "%2B8613800001004", "陈建华", "13800002001"):
        assert secret not in logs, f"{secret!r} in SafeGrid's logs"
    # One JSON object a line (gateway/jsonlog.py), with the ids the trail is followed by,
    # and no personal data in any field either (json.loads undoes escaping).
    records = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "request_id", "job_id"} <= r.keys()
               for r in records)
    assert any(r["job_id"] and r["request_id"] for r in records)  # a job under a request
    for record in records:
        for value in record.values():
            for secret in ("13800001004", "+8613800001004", "陈建华", "13800002001",
                           "尾随学生"):
                assert secret not in str(value), f"{secret!r} in a log field: {record}"
