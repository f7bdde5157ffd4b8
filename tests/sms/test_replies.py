"""Every reply fits one SMS with the longest values it can carry (SMS_GRAMMAR.md: Replies)."""

from __future__ import annotations

import pytest

from sms import replies
from sms.encoding import fits_one, segments

LONG_STATION = "某某某自治县公安局某某某某某某某某边境派出所"
CODE = "RZZZZZZ"


@pytest.mark.parametrize(
    "text",
    [
        replies.receipt(CODE, LONG_STATION),
        replies.receipt(CODE, None),
        replies.triage_receipt(CODE, LONG_STATION),
        *replies.FIXES.values(),
        replies.fix("something_new"),
        *(replies.status(CODE, s) for s in (*replies.STATUS_NAMES, "odd")),
        *(replies.status(CODE, s, LONG_STATION) for s in (*replies.STATUS_NAMES, "odd")),
        *(replies.linked_report_notice(CODE, CODE, c, raised) for c in replies.CATEGORY_NAMES
          for raised in (True, False)),
        replies.not_found(CODE),
        replies.sighting_ack("402913", swept=True),
        replies.sighting_ack("402913", swept=False),
        replies.unsubscribed(),
        replies.cannot_unsubscribe(),
        replies.rate_limited(),
        *(replies.dispatch_notice(CODE, c, "某某街道某某某某社区第12网格加长名称再加长")
          for c in replies.CATEGORY_NAMES),
        replies.dispatch_notice(CODE, "CHILD", None),
        *(replies.escalation_notice(CODE, c, 99999, 12) for c in replies.CATEGORY_NAMES),
        replies.transfer_request_notice(CODE, LONG_STATION),
        replies.closed_notice(CODE),
        *replies.PIN_PROBLEMS.values(),
        *replies.LOCATION_NOTES.values(),
    ],
)
def test_each_reply_fits_one_segment(text):
    assert fits_one(text), (len(text), text)


def test_receipt_carries_code_and_station():
    assert replies.receipt("R7K3Q9M", "城关派出所") == "已收到举报R7K3Q9M，已转交城关派出所。"


def test_help_may_take_several_segments_but_not_many():
    assert 1 < segments(replies.help_text()) <= 3


def test_every_category_has_a_chinese_name():
    from sms.grammar import CATEGORIES, UNCLASSIFIED

    assert set(replies.CATEGORY_NAMES) == {*CATEGORIES, UNCLASSIFIED}


def test_dispatch_notice_names_no_person():
    text = replies.dispatch_notice("R7K3Q9M", "CHILD", "城南社区第1网格")
    assert text == "新线索R7K3Q9M：拐卖儿童，城南社区第1网格。请尽快签收。"


def test_the_status_names_the_station_that_holds_the_report():
    assert replies.status(CODE, "routed", "南台派出所") == f"举报{CODE}：已转交南台派出所。"
    assert replies.status(CODE, "acknowledged", "南台派出所") == f"举报{CODE}：南台派出所已签收。"
    assert replies.status(CODE, "closed", "南台派出所") == f"举报{CODE}：已办结。"
