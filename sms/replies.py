"""Every SMS SafeGrid sends, in the recipient's language. Chinese first; each fits one SMS.

The texts come from the gettext catalogs (sms/catalogs.py, docs/sms-languages.md):
the Chinese below is the msgid, and the text sent when no language is given.
`lang` is a person's language code from the roster (`zh`, `en`, `ug`, `bo`, `ii`);
missing or unknown means Chinese. Numbers, codes and names are placeholders, and
the grammar's keywords (R, Q, S, OK, TD, H, 帮助) are never translated.

A reply with any non-GSM-7 character must fit one UCS-2 segment (70
characters); `tests/sms/test_replies.py` checks every message of every
catalog with the longest names and codes it can carry. Only the help text may
take more (up to three), and the welcome two.
"""

from __future__ import annotations

import unicodedata
from datetime import time
from typing import Final

from sms.catalogs import translation
from sms.encoding import GSM7_SINGLE, UCS2_SINGLE, coding, fits_one


def N_(message: str) -> str:
    """Marks a text for the catalogs where it is kept in a table; translated where used."""
    return message


CATEGORY_NAMES: Final[dict[str, str]] = {
    "CHILD": N_("拐卖儿童"),
    "WOMAN": N_("拐卖妇女"),
    "ORIGIN": N_("来历不明儿童"),
    "LABOUR": N_("强迫劳动"),
    "ADOPT": N_("非法收养"),
    "BIRTH": N_("可疑分娩"),
    "ABUSE": N_("性侵未成年人"),
    "ONLINE": N_("网络诱骗"),
    "OTHER": N_("其他"),
    "UNCLASSIFIED": N_("待分类"),
}

STATUS_NAMES: Final[dict[str, str]] = {
    "received": N_("已收到"),
    "routed": N_("已转交派出所"),
    "acknowledged": N_("派出所已签收"),
    "closed": N_("已办结"),
}
IN_PROGRESS: Final = N_("处理中")  # the name of any other state

# Characters in one UCS-2 segment: every Chinese reply fits in it.
UCS2_SEGMENT: Final = UCS2_SINGLE

# Names are cut so every message that carries them fits its segments.
MAX_STATION: Final = 20
MAX_CELL: Final = 24
MAX_UNIT: Final = 20
# An alert's description and place are cut longest-first until it fits one SMS
# (see alert()); longer than this they could never fit.
_MAX_FREE_TEXT: Final = 160


def category_name(category: str, *, lang: str | None = None) -> str:
    """A category's name (sms.grammar codes), or the code itself when it has none."""
    name = CATEGORY_NAMES.get(category)
    return translation(lang).gettext(name) if name else category


def receipt(report_code: str, station_name: str | None, *, lang: str | None = None) -> str:
    """The receipt for a report: its code, and the station it went to."""
    t = translation(lang)
    if station_name:
        return t.gettext("已收到举报{code}，已转交{station}。").format(
            code=report_code, station=station_name[:MAX_STATION])
    return t.gettext("已收到举报{code}，正在转交派出所。").format(code=report_code)


def _separator(first: str) -> str:
    """Nothing after full-width punctuation (Chinese), a space after anything else (a
    Chinese station name ending a Uyghur receipt, a Tibetan shad, a full stop)."""
    last = first[-1:]
    if last and unicodedata.category(last)[0] == "P" and unicodedata.east_asian_width(last) in "FW":
        return ""
    return " "


def with_note(receipt_text: str, note: str | None) -> tuple[str, str | None]:
    """The receipt with a location note appended when both fit one SMS; else the note apart."""
    if note is None:
        return receipt_text, None
    joined = receipt_text + _separator(receipt_text) + note
    if fits_one(joined):
        return joined, None
    return receipt_text, note


def triage_receipt(report_code: str, station_name: str | None, *,
                   lang: str | None = None) -> str:
    """Receipt for a message we could not classify: it is still a report."""
    t = translation(lang)
    if station_name:
        return t.gettext("已收到举报{code}，已转交{station}。如需补充请回复R+类别+内容。").format(
            code=report_code, station=station_name[:MAX_STATION])
    return t.gettext("已收到举报{code}，正在转交派出所。如需补充请回复R+类别+内容。").format(
        code=report_code)


def help_text(*, lang: str | None = None) -> str:
    """How to use the reporting number (may take several segments)."""
    return translation(lang).pgettext(
        "help",
        "举报：R 类别 @网格号 情况，如 R 1 @110105003012 男孩被抱上面包车。"
        "类别：1儿童 2妇女 3来历不明 4强迫劳动 5非法收养 6可疑分娩 7性侵 8网络诱骗 9其他。"
        "查询：Q 举报码。协查回复：S 协查码 情况；排查完毕：OK 协查码。退订：TD。",
    )


FIXES: Final[dict[str, str]] = {
    "missing_code": N_("缺少编号：查询请发 Q+举报码（如Q R7K3Q9M），协查请发 S 或 OK+6位协查码。"),
    "bad_grid_code": N_("网格号应为9至15位数字，如 @110105003012。已按您的登记网格处理。"),
    "unknown_category": N_(
        "未识别类别，已按待分类处理。类别：1儿童 2妇女 3来历不明 4劳动 9其他。"),
}
_NOT_UNDERSTOOD: Final = N_("未能识别，请发 帮助 查看格式。")  # any other parse error


def fix(error: str, *, lang: str | None = None) -> str:
    """What to change, for a parse error of sms.grammar."""
    return translation(lang).gettext(FIXES.get(error, _NOT_UNDERSTOOD))


def status(report_code: str, state: str, station_name: str | None = None, *,
           lang: str | None = None) -> str:
    """The state of a report, for its own sender only: no case details, but the station
    that holds it now (after a transfer, the new one)."""
    t = translation(lang)
    if station_name and state == "routed":
        return t.gettext("举报{code}：已转交{station}。").format(
            code=report_code, station=station_name[:MAX_STATION])
    if station_name and state == "acknowledged":
        return t.gettext("举报{code}：{station}已签收。").format(
            code=report_code, station=station_name[:MAX_STATION])
    return t.gettext("举报{code}：{state}。").format(
        code=report_code, state=t.gettext(STATUS_NAMES.get(state, IN_PROGRESS)))


def not_found(report_code: str, *, lang: str | None = None) -> str:
    """Unknown code, or someone else's report: the same answer, so codes are no oracle."""
    return translation(lang).gettext("未找到您的举报{code}，请核对举报码。").format(
        code=report_code)


def sighting_receipt(alert_code: str, *, lang: str | None = None) -> str:
    """Acknowledges a sighting (S) sent for a missing-child alert."""
    return translation(lang).gettext("已收到协查{alert}的线索，已转交民警。谢谢！").format(
        alert=alert_code)


def swept_ack(alert_code: str, *, lang: str | None = None) -> str:
    """Acknowledges that a grid worker's cell is swept (OK) for a missing-child alert."""
    return translation(lang).gettext("已记录：协查{alert}，您的网格已排查完毕。谢谢！").format(
        alert=alert_code)


def sighting_ack(alert_code: str, swept: bool, *, lang: str | None = None) -> str:
    """Acknowledges an answer to a missing-child alert."""
    return (swept_ack if swept else sighting_receipt)(alert_code, lang=lang)


def alert_not_open(alert_code: str, *, lang: str | None = None) -> str:
    """An answer to an alert code that is unknown or has ended: nothing more is needed, and a
    new clue is a report of its own."""
    return translation(lang).gettext(
        "协查{alert}不存在或已结束，无需回复。如有新线索，请直接发送举报。").format(alert=alert_code)


def unsubscribed(*, lang: str | None = None) -> str:
    return translation(lang).gettext("已退订SafeGrid短信。如需举报仍可随时发送短信。")


def cannot_unsubscribe(*, lang: str | None = None) -> str:
    """Registered duty phones keep receiving alerts: it is their duty (强制报告)."""
    return translation(lang).gettext(
        "您是登记的报告责任人，协查和回执短信不能退订。如有变动请联系所在单位。")


def rate_limited(*, lang: str | None = None) -> str:
    return translation(lang).gettext("您发送过于频繁，本条已保存待人工查看。紧急情况请拨打110。")


def dispatch_notice(report_code: str, category: str, cell_name: str | None, *,
                    lang: str | None = None) -> str:
    """To a station's duty phone: code, category, cell — no victim or reporter details."""
    t = translation(lang)
    where = (cell_name or t.gettext("辖区外"))[:MAX_CELL]
    return t.gettext("新线索{code}：{category}，{cell}。请尽快签收。").format(
        code=report_code, category=category_name(category, lang=lang), cell=where)


def linked_report_notice(report_code: str, new_code: str, category: str,
                         priority_raised: bool, *, lang: str | None = None) -> str:
    """To a station's duty phone: a new report joined a clue it already works."""
    t = translation(lang)
    if priority_raised:
        text = t.gettext("线索{code}（{category}）有新举报{new_code}并入，已升为紧急，请查看。")
    else:
        text = t.gettext("线索{code}（{category}）有新举报{new_code}并入，请查看。")
    return text.format(code=report_code, new_code=new_code,
                       category=category_name(category, lang=lang))


def escalation_notice(report_code: str, category: str, minutes_overdue: int, level: int, *,
                      lang: str | None = None) -> str:
    """To the next person up the chain: a clue nobody acknowledged in time (督办)."""
    return translation(lang).gettext(
        "【督办{level}】线索{code}（{category}）超时{minutes}分钟未签收，请立即处理。").format(
        level=level, code=report_code, category=category_name(category, lang=lang),
        minutes=minutes_overdue)


def transfer_request_notice(report_code: str, from_station: str, *,
                            lang: str | None = None) -> str:
    """To a station a clue is offered to: it must accept or reject it."""
    return translation(lang).gettext(
        "{station}请求将线索{code}转交贵所，请尽快接收或退回。").format(
        station=from_station[:MAX_STATION], code=report_code)


def closed_notice(report_code: str, *, lang: str | None = None) -> str:
    """To the reporter, when their report is closed (no case details)."""
    return translation(lang).gettext("您的举报{code}已办结。感谢您的举报！").format(
        code=report_code)


# When a deployment requires the SMS PIN (sms/pin.py) and a registered phone's
# message lacks a good one: it is still filed, as an unverified tip.
PIN_PROBLEMS: Final[dict[str, str]] = {
    "pin_missing": N_("请在短信开头加口令，如 P123456 R 1 情况。本条已按未核实线索登记。"),
    "pin_wrong": N_("口令错误。本条已按未核实线索登记。"),
    "pin_locked": N_("口令错误次数过多，已暂停核验，请联系所在单位。本条已按未核实线索登记。"),
    "pin_not_set": N_("您尚未设置短信口令，请联系所在单位。本条已按未核实线索登记。"),
}


def pin_problem(problem: str, *, lang: str | None = None) -> str:
    """What was wrong with the PIN, and that the message still counts."""
    return translation(lang).gettext(PIN_PROBLEMS[problem])


# Shown to the reporter with their report (the app's status view) when the place it
# was routed by is not the one they gave, so nobody believes a report went where it
# did not. Flags from grid/snapshot.py.
LOCATION_NOTES: Final[dict[str, str]] = {
    "gps_outside_grid": N_("您的定位不在网格服务区内，已按您登记的网格转交派出所。"),
    "outside_grid_nearest_cell": N_("您的定位在网格边缘外，已转交最近网格的派出所。"),
    "gps_imprecise_grid_code": N_("您的定位精度不足，已按填写的网格编号转交。"),
    "gps_grid_code_disagree": N_("您的定位与填写的网格编号不一致，已按定位转交。"),
    "gps_imprecise": N_("您的定位精度较低，已按大致位置转交，请补充详细地点。"),
    "unplaced_review": N_("未能确定位置，已转交县公安局值班室人工核实。"),
    "grid_code_unknown": N_("您填写的网格号不存在，已按其他位置信息转交。"),
}


def location_note(flags: list[str] | tuple[str, ...], *,
                  lang: str | None = None) -> str | None:
    """What to tell a reporter about where their report was placed; None when as given."""
    for flag in LOCATION_NOTES:
        if flag in flags:
            return translation(lang).gettext(LOCATION_NOTES[flag])
    return None


def welcome(cell_name: str, unit_name: str | None, *, lang: str | None = None) -> str:
    """To a person just enrolled: for which cell (and unit), and how to report by SMS.
    At most two segments."""
    t = translation(lang)
    if unit_name:
        text = t.pgettext(
            "welcome",
            "您已登记为SafeGrid报告人，网格：{cell}，单位：{unit}。"
            "举报请发：R 类别 @网格号 情况，如 R 1 @110105003012 男孩被抱上面包车。"
            "查询发Q+举报码，帮助发0。")
    else:
        text = t.pgettext(
            "welcome",
            "您已登记为SafeGrid报告人，网格：{cell}。"
            "举报请发：R 类别 @网格号 情况，如 R 1 @110105003012 男孩被抱上面包车。"
            "查询发Q+举报码，帮助发0。")
    return text.format(cell=cell_name[:MAX_CELL], unit=(unit_name or "")[:MAX_UNIT])


def _fit(template: str, **values: str) -> str:
    """`template` filled so it fits one SMS: while it does not, the longest of the free-text
    `values` loses its last character, and a cut value ends with an ellipsis ("…" when
    the text is UCS-2 anyway, "..." when it is GSM-7, so the cut never changes coding)."""
    values = {name: value[:_MAX_FREE_TEXT] for name, value in values.items()}
    if fits_one(text := template.format(**values)):
        return text
    ucs2 = coding(text) == "ucs2"
    ellipsis, limit = ("…", UCS2_SINGLE) if ucs2 else ("...", GSM7_SINGLE)
    kept = dict(values)
    while any(kept.values()):
        # Cut half the excess at once: a character costs at most two units, so this never
        # cuts more than the one-at-a-time rule would.
        for _ in range(max(1, (len(text) - limit) // 2)):
            longest = max(kept, key=lambda name: len(kept[name]))
            kept[longest] = kept[longest][:-1]
        text = template.format(**{name: kept[name] + (ellipsis if kept[name] != values[name]
                                                       else "") for name in values})
        if fits_one(text):
            break
    return text


def alert(alert_code: str, description: str, seen_at: time, place: str, *,
          lang: str | None = None) -> str:
    """A missing-child alert (寻人), always one SMS: the code, who, when and where last
    seen, and how to answer (S<code> seen, OK<code> swept). The description and the
    place are cut longest-first until it fits; the code and time never are."""
    # TRANSLATORS: keep S{alert} and OK{alert}: they are the reply keywords.
    template = translation(lang).gettext(
        "【寻人{alert}】{description}，{time}在{place}走失。见到回S{alert}+地点，已找过回OK{alert}")
    return _fit(template.replace("{alert}", alert_code).replace("{time}", f"{seen_at:%H:%M}"),
                description=description.strip(), place=place.strip())


def alert_update(alert_code: str, update: str, *, lang: str | None = None) -> str:
    """News on a missing-child alert (a new description, a new place); the update is cut to
    fit one SMS."""
    template = translation(lang).gettext("【寻人{alert}更新】{update}。见到回S{alert}+地点")
    return _fit(template.replace("{alert}", alert_code), update=update.strip())


def alert_found_thanks(alert_code: str, *, lang: str | None = None) -> str:
    """The child of an alert is found: thanks, and no more answers needed."""
    return translation(lang).gettext(
        "【寻人{alert}】孩子已找到，感谢您的协助！无需再回复。").format(alert=alert_code)


def alert_cancelled(alert_code: str, *, lang: str | None = None) -> str:
    """An alert was withdrawn: no more answers needed."""
    return translation(lang).gettext("【寻人{alert}】协查已撤销，无需再回复。谢谢！").format(
        alert=alert_code)


def reporter_deactivated(*, lang: str | None = None) -> str:
    """To a deactivated reporter's phone: the message counts as a public tip."""
    return translation(lang).gettext(
        "您的报告责任人登记已停用，本条按公众线索处理。如有疑问请联系所在单位。")
