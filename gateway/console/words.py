"""What the console says, in the reader's language, and when, in Beijing time.

Chinese first, English available: the texts come from the gettext catalogs of
the SMS replies (sms/catalogs.py), in their own `console` domain, so one
`make messages` extracts and updates both. The msgids are the Chinese texts.
Dates are shown in the settings' zone (Asia/Shanghai); storage stays naive UTC.
"""

from __future__ import annotations

import datetime as dt
import gettext
from zoneinfo import ZoneInfo

from sms import catalogs

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"
DOMAIN = "console"


def N_(text: str) -> str:  # noqa: N802 - gettext's name for "translate later"
    """Mark a text kept in a table for extraction; it is translated where it is shown."""
    return text


CATEGORIES = {"CHILD": N_("拐卖儿童"), "WOMAN": N_("拐卖妇女"), "ORIGIN": N_("来历不明儿童"),
              "LABOUR": N_("强迫劳动/乞讨"), "ADOPT": N_("非法收养/送养"),
              "BIRTH": N_("可疑分娩"), "ABUSE": N_("性侵未成年人"), "ONLINE": N_("网络诱骗"),
              "OTHER": N_("其他"), "UNCLASSIFIED": N_("未分类")}
PRIORITIES = {"critical": N_("紧急"), "urgent": N_("较急"), "routine": N_("一般")}
STATUSES = {"new": N_("新线索"), "delivered": N_("待签收"), "acknowledged": N_("已签收"),
            "transfer_requested": N_("移交中"), "closed": N_("已结案")}
OUTCOMES = {"rescued": N_("已解救"), "arrested": N_("已抓获"),
            "confirmed_no_crime": N_("核实无违法犯罪"), "false_report": N_("虚假报告"),
            "duplicate": N_("重复线索"), "referred": N_("已移送"), "other": N_("其他")}
ROLES = {"grid_worker": N_("网格员"), "teacher": N_("教师"), "medical": N_("医护人员"),
         "registrar": N_("婚姻登记员"), "transport": N_("交通从业人员"),
         "hotel": N_("旅馆从业人员"), "child_director": N_("儿童主任"),
         "public": N_("群众"), "other": N_("其他"), "unknown": N_("未知")}
ACTIONS = {"create": N_("生成"), "deliver": N_("送达"), "acknowledge": N_("签收"),
           "request_transfer": N_("申请移交"),
           "accept_transfer": N_("接受移交"), "reject_transfer": N_("拒绝移交"),
           "note": N_("备注"), "close": N_("结案"), "close_duplicate": N_("按重复结案"),
           "reopen": N_("重新打开"), "escalate": N_("升级"), "unlink": N_("拆分")}
DONE = {"acknowledge": N_("已签收。"), "note": N_("备注已保存。"),
        "transfer": N_("已申请移交，等待对方派出所答复。"),
        "accept_transfer": N_("已接受移交，线索已转入本所。"), "close": N_("已结案。"),
        "reopen": N_("线索已重新打开，继续办理。"),
        "unlink": N_("举报已拆分为本所的一条新线索。"), "other": N_("已完成。")}
ALERT_STATUSES = {"active": N_("协查中"), "updated": N_("协查中（已更新）"),
                  "found": N_("已找到"), "cancelled": N_("已撤销")}
ALERT_DONE = {"issued": N_("寻人协查已发布，正在按圈层发送短信。"),
              "found": N_("已结束协查：孩子已找到。"), "cancelled": N_("寻人协查已撤销。"),
              "other": N_("已完成。")}
SEXES = {"male": N_("男孩"), "female": N_("女孩"), "unknown": N_("性别不详")}


def language_of(value: str | None) -> str:
    """A language the console speaks (`zh` or `en`); Chinese for anything else."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def translation(language: str) -> gettext.NullTranslations:
    """The console's texts in `language`, falling back to Chinese."""
    return catalogs.translation(language_of(language), domain=DOMAIN)


def local_time(when: dt.datetime | None, zone: str, with_date: bool = True) -> str:
    """A stored (naive UTC) time as people read it, in `zone`: '2026-12-06 07:20'."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    shown = when.astimezone(ZoneInfo(zone))
    return shown.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def iso_utc(when: dt.datetime | None) -> str:
    """A stored time for the page's script (the SLA countdown): ISO 8601 with 'Z'."""
    if when is None:
        return ""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.isoformat(timespec="seconds") + "Z"
