"""Anchoring the audit head in a file, and verify catching a consistent rewrite with it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway import startup
from gateway.extensions import redis_store
from gateway.privacy import audit, audit_anchor
from gateway.privacy.audit import AuditEntry, append, verify
from gateway.worker import build_cron


@pytest.fixture
def log(app):  # type: ignore[no-untyped-def]
    AuditEntry.ensure_indexes()
    return AuditEntry._get_collection()


@pytest.fixture
def anchors(tmp_path: Path) -> Path:
    return tmp_path / "audit-anchors.jsonl"


def fill(n: int) -> None:
    for i in range(n):
        append(f"officer:{i % 3}", "dispatch.acknowledge", f"dispatch:{i}", {"n": i})


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rewrite_from(log, seq: int) -> None:  # type: ignore[no-untyped-def]
    """What an attacker with write access does: change entry `seq`, then recompute every
    hash and link from there to the head, so the chain is consistent again."""
    prev = log.find_one({"seq": seq - 1})["hash"] if seq > 1 else audit.GENESIS_HASH
    for raw in log.find({"seq": {"$gte": seq}}).sort("seq", 1):
        details = raw["details"]
        if raw["seq"] == seq:
            details = {**details, "n": -1}
        forged = audit.entry_hash(raw["seq"], raw["at"], raw["actor"], raw["action"],
                                  raw["subject"], details, prev)
        log.update_one({"_id": raw["_id"]},
                       {"$set": {"details": details, "prev_hash": prev, "hash": forged}})
        prev = forged


def test_anchor_writes_the_head_once_and_again_when_it_moves(log, anchors, caplog) -> None:
    fill(3)
    caplog.set_level(logging.INFO, logger="gateway.privacy.audit_anchor")
    first = audit_anchor.anchor(anchors)
    assert first.written
    assert first.head == audit.head()
    [line] = lines(anchors)
    assert (line["seq"], line["hash"]) == audit.head()
    assert str(line["at"]).endswith("Z")
    assert f"audit head: seq 3 hash {line['hash']}" in caplog.text

    again = audit_anchor.anchor(anchors)
    assert not again.written
    assert len(lines(anchors)) == 1

    fill(2)
    moved = audit_anchor.anchor(anchors)
    assert moved.written
    assert [(x["seq"], x["hash"]) for x in lines(anchors)][1] == audit.head()
    assert [x["seq"] for x in lines(anchors)] == [3, 5]
    assert not moved.previous_broken


def test_empty_log_is_not_anchored(log, anchors) -> None:
    done = audit_anchor.anchor(anchors)
    assert done.head is None
    assert not done.written
    assert anchors.read_text() == ""


def test_verify_passes_with_a_good_anchor_file(log, anchors) -> None:
    for _ in range(3):
        fill(4)
        audit_anchor.anchor(anchors)
    recorded = audit_anchor.read(anchors)
    assert recorded.unreadable == []
    assert [a.seq for a in recorded.anchors] == [4, 8, 12]
    result = verify(anchors=recorded.anchors)
    assert result.ok, result.summary()
    assert result.anchors_checked == 3


def test_consistent_rewrite_after_anchoring_fails_verify_and_names_the_anchor(
        log, anchors, caplog) -> None:
    fill(5)
    audit_anchor.anchor(anchors)  # line 1: seq 5
    fill(3)
    audit_anchor.anchor(anchors)  # line 2: seq 8
    at = [str(x["at"]) for x in lines(anchors)]
    rewrite_from(log, 3)
    assert verify().ok  # the chain alone cannot tell

    result = verify(anchors=audit_anchor.read(anchors).anchors)
    assert not result.ok
    assert result.anchor_failures == 2
    assert [(p.kind, p.seq) for p in result.problems] == [("anchor", 5), ("anchor", 8)]
    assert f"anchor line 1 ({at[0]})" in result.problems[0].message
    assert f"anchor line 2 ({at[1]})" in result.problems[1].message
    assert "FAILED" in result.summary()

    # The next periodic anchoring notices too, and says so loudly.
    caplog.set_level(logging.INFO, logger="gateway.privacy.audit_anchor")
    fill(1)
    assert audit_anchor.anchor(anchors).previous_broken
    assert any(r.levelno == logging.ERROR and "seq 8" in r.getMessage() for r in caplog.records)


def test_truncated_tail_fails_verify(log, anchors) -> None:
    fill(6)
    audit_anchor.anchor(anchors)
    log.delete_many({"seq": {"$gte": 5}})
    result = verify(anchors=audit_anchor.read(anchors).anchors)
    assert [(p.kind, p.seq) for p in result.problems] == [("anchor", 6)]
    assert "gone" in result.problems[0].message


def test_a_torn_last_line_stays_apart_and_is_reported(log, anchors) -> None:
    fill(2)
    anchors.write_text('{"seq": 1, "hash": "ab')  # a crash mid-write
    assert audit_anchor.anchor(anchors).written
    recorded = audit_anchor.read(anchors)
    assert recorded.unreadable == [1]
    assert [a.seq for a in recorded.anchors] == [2]


def test_anchor_job_is_off_without_a_file(app, settings, anchors) -> None:

    assert audit_anchor.run_anchor() is None
    startup.configure(settings.with_(audit_anchor_file=str(anchors)))
    append("officer:1", "dispatch.note", "dispatch:1")
    done = audit_anchor.run_anchor()
    assert done is not None
    assert done.written
    assert anchors.exists()


def test_cron_schedules_anchoring_only_when_a_file_is_set(app, settings, anchors) -> None:
    def jobs(config) -> dict[str, int | None]:  # type: ignore[no-untyped-def]
        return {job.func_name: job.interval
                for job in build_cron(config, redis_store.conn).get_jobs()}

    off = jobs(settings)
    assert "gateway.privacy.audit_anchor.run_anchor" not in off
    assert "gateway.delivery.routing.sweep" in off
    on = jobs(settings.with_(audit_anchor_file=str(anchors), audit_anchor_interval_s=120))
    assert on["gateway.privacy.audit_anchor.run_anchor"] == 120
    assert on.keys() - off.keys() == {"gateway.privacy.audit_anchor.run_anchor"}
