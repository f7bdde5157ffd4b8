"""The short replies SafeGrid texts back. Chinese first; each fits one SMS.

A reply with any non-GSM-7 character must fit one UCS-2 segment (70
characters); `tests/sms/test_replies.py` checks every one, with the longest
names and codes they can carry.
"""

from __future__ import annotations

from typing import Final

CATEGORY_NAMES: Final[dict[str, str]] = {
    "CHILD": "拐卖儿童",
    "WOMAN": "拐卖妇女",
    "ORIGIN": "来历不明儿童",
    "LABOUR": "强迫劳动",
    "ADOPT": "非法收养",
    "BIRTH": "可疑分娩",
    "ABUSE": "性侵未成年人",
    "ONLINE": "网络诱骗",
    "OTHER": "其他",
    "UNCLASSIFIED": "待分类",
}

STATUS_NAMES: Final[dict[str, str]] = {
    "received": "已收到",
    "routed": "已转交派出所",
    "acknowledged": "派出所已签收",
    "closed": "已办结",
}

# Characters in one UCS-2 segment: every Chinese reply fits in it.
UCS2_SEGMENT: Final = 70

# Station names are cut so the receipt always fits one segment.
_MAX_STATION: Final = 20


def receipt(report_code: str, station_name: str | None) -> str:
    """The receipt for a report: its code, and the station it went to."""
    if station_name:
        return f"已收到举报{report_code}，已转交{station_name[:_MAX_STATION]}。"
    return f"已收到举报{report_code}，正在转交派出所。"


def with_note(receipt_text: str, note: str | None) -> tuple[str, str | None]:
    """The receipt with a location note appended when both fit one SMS; else the note apart."""
    if note is None:
        return receipt_text, None
    if len(receipt_text) + len(note) <= UCS2_SEGMENT:
        return receipt_text + note, None
    return receipt_text, note


def triage_receipt(report_code: str, station_name: str | None) -> str:
    """Receipt for a message we could not classify: it is still a report."""
    return receipt(report_code, station_name)[:-1] + "。如需补充请回复R+类别+内容。"


def help_text() -> str:
    """How to use the reporting number (may take several segments)."""
    return (
        "举报：R 类别 @网格号 情况，如 R 1 @110105003012 男孩被抱上面包车。"
        "类别：1儿童 2妇女 3来历不明 4强迫劳动 5非法收养 6可疑分娩 7性侵 8网络诱骗 9其他。"
        "查询：Q 举报码。协查回复：S 协查码 情况；排查完毕：OK 协查码。退订：TD。"
    )


FIXES: Final[dict[str, str]] = {
    "missing_code": "缺少编号：查询请发 Q+举报码（如Q R7K3Q9M），协查请发 S 或 OK+6位协查码。",
    "bad_grid_code": "网格号应为9至15位数字，如 @110105003012。已按您的登记网格处理。",
    "unknown_category": "未识别类别，已按待分类处理。类别：1儿童 2妇女 3来历不明 4劳动 9其他。",
}


def fix(error: str) -> str:
    """What to change, for a parse error of sms.grammar."""
    return FIXES.get(error, "未能识别，请发 帮助 查看格式。")


def status(report_code: str, state: str, station_name: str | None = None) -> str:
    """The state of a report, for its own sender only: no case details, but the station
    that holds it now (after a transfer, the new one)."""
    if station_name and state == "routed":
        return f"举报{report_code}：已转交{station_name[:_MAX_STATION]}。"
    if station_name and state == "acknowledged":
        return f"举报{report_code}：{station_name[:_MAX_STATION]}已签收。"
    return f"举报{report_code}：{STATUS_NAMES.get(state, '处理中')}。"


def not_found(report_code: str) -> str:
    """Unknown code, or someone else's report: the same answer, so codes are no oracle."""
    return f"未找到您的举报{report_code}，请核对举报码。"


def sighting_ack(alert_code: str, swept: bool) -> str:
    """Acknowledges an answer to a missing-child alert."""
    if swept:
        return f"已记录：协查{alert_code}，您的网格已排查完毕。谢谢！"
    return f"已收到协查{alert_code}的线索，已转交民警。谢谢！"


def unsubscribed() -> str:
    return "已退订SafeGrid短信。如需举报仍可随时发送短信。"


def cannot_unsubscribe() -> str:
    """Registered duty phones keep receiving alerts: it is their duty (强制报告)."""
    return "您是登记的报告责任人，协查和回执短信不能退订。如有变动请联系所在单位。"


def reporter_deactivated() -> str:
    """To a deactivated reporter's phone: the message counts as a public tip."""
    return "您的报告责任人登记已停用，本条按公众线索处理。如有疑问请联系所在单位。"


def rate_limited() -> str:
    return "您发送过于频繁，本条已保存待人工查看。紧急情况请拨打110。"


def dispatch_notice(report_code: str, category: str, cell_name: str | None) -> str:
    """To a station's duty phone: code, category, cell — no victim or reporter details."""
    where = (cell_name or "辖区外")[:24]
    return f"新线索{report_code}：{CATEGORY_NAMES.get(category, category)}，{where}。请尽快签收。"


def linked_report_notice(report_code: str, new_code: str, category: str,
                         priority_raised: bool) -> str:
    """To a station's duty phone: a new report joined a clue it already works."""
    name = CATEGORY_NAMES.get(category, category)
    raised = "，已升为紧急" if priority_raised else ""
    return f"线索{report_code}（{name}）有新举报{new_code}并入{raised}，请查看。"


def escalation_notice(report_code: str, category: str, minutes_overdue: int, level: int) -> str:
    """To the next person up the chain: a clue nobody acknowledged in time (督办)."""
    name = CATEGORY_NAMES.get(category, category)
    return (f"【督办{level}】线索{report_code}（{name}）超时{minutes_overdue}分钟未签收，"
            "请立即处理。")


def transfer_request_notice(report_code: str, from_station: str) -> str:
    """To a station a clue is offered to: it must accept or reject it."""
    return f"{from_station[:20]}请求将线索{report_code}转交贵所，请尽快接收或退回。"


def closed_notice(report_code: str) -> str:
    """To the reporter, when their report is closed (no case details)."""
    return f"您的举报{report_code}已办结。感谢您的举报！"


# When a deployment requires the SMS PIN (sms/pin.py) and a registered phone's
# message lacks a good one: it is still filed, as an unverified tip.
PIN_PROBLEMS: Final[dict[str, str]] = {
    "pin_missing": "请在短信开头加口令，如 P123456 R 1 情况。本条已按未核实线索登记。",
    "pin_wrong": "口令错误。本条已按未核实线索登记。",
    "pin_locked": "口令错误次数过多，已暂停核验，请联系所在单位。本条已按未核实线索登记。",
    "pin_not_set": "您尚未设置短信口令，请联系所在单位。本条已按未核实线索登记。",
}


def pin_problem(problem: str) -> str:
    """What was wrong with the PIN, and that the message still counts."""
    return PIN_PROBLEMS[problem]


# Shown to the reporter with their report (the app's status view) when the place it
# was routed by is not the one they gave, so nobody believes a report went where it
# did not. Flags from grid/snapshot.py.
LOCATION_NOTES: Final[dict[str, str]] = {
    "gps_outside_grid": "您的定位不在网格服务区内，已按您登记的网格转交派出所。",
    "outside_grid_nearest_cell": "您的定位在网格边缘外，已转交最近网格的派出所。",
    "gps_imprecise_grid_code": "您的定位精度不足，已按填写的网格编号转交。",
    "gps_grid_code_disagree": "您的定位与填写的网格编号不一致，已按定位转交。",
    "gps_imprecise": "您的定位精度较低，已按大致位置转交，请补充详细地点。",
    "unplaced_review": "未能确定位置，已转交县公安局值班室人工核实。",
    "grid_code_unknown": "您填写的网格号不存在，已按其他位置信息转交。",
}


def location_note(flags: list[str] | tuple[str, ...]) -> str | None:
    """What to tell a reporter about where their report was placed; None when as given."""
    for flag in LOCATION_NOTES:
        if flag in flags:
            return LOCATION_NOTES[flag]
    return None
