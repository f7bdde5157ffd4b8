"""The hash-chained audit log: appends under concurrency, and verify finding tampering."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from gateway.privacy import audit
from gateway.privacy.audit import GENESIS_HASH, AuditEntry, append, verify


@pytest.fixture
def log(app):  # type: ignore[no-untyped-def]
    """An empty audit log with its unique seq index in place."""
    AuditEntry.ensure_indexes()
    return AuditEntry._get_collection()


def fill(n: int) -> None:
    for i in range(n):
        append(f"officer:{i % 3}", "dispatch.acknowledge", f"dispatch:{i}",
               {"from": "delivered", "to": "acknowledged", "n": i})


def kinds(result: audit.VerifyResult) -> list[tuple[str, int]]:
    return [(p.kind, p.seq) for p in result.problems]


def test_first_entry_starts_the_chain(log) -> None:
    entry = append("officer:1", "report.unseal", "report:R7K3Q9M", {"reason": "案情需要"})
    assert entry.seq == 1
    assert entry.prev_hash == GENESIS_HASH
    stored = log.find_one({"seq": 1})
    assert stored["hash"] == entry.hash
    assert len(entry.hash) == 64
    assert stored["at"] == entry.at
    assert entry.at.tzinfo is None
    second = append("system:sweeper", "report.requeue", "report:R7K3Q9M")
    assert second.seq == 2
    assert second.prev_hash == entry.hash
    result = verify()
    assert result.ok
    assert result.checked == 2
    assert result.problems == []
    assert result.last_seq == 2
    assert result.last_hash == second.hash
    assert f"head: seq 2 hash {second.hash}" in "\n".join(result.summary())


def test_empty_log_verifies(log) -> None:
    result = verify()
    assert result.ok
    assert result.checked == 0
    assert result.last_seq is None


def test_concurrent_appends_make_one_gapless_chain(log) -> None:
    fill(10)
    threads, per_thread = 6, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                append(f"officer:{t}", "dispatch.note", f"dispatch:{t}-{i}", {"i": i})
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    total = 10 + threads * per_thread
    seqs = [doc["seq"] for doc in log.find({}, {"seq": 1}).sort("seq", 1)]
    assert seqs == list(range(1, total + 1))
    result = verify()
    assert result.ok, result.summary()
    assert result.checked == total


def test_altered_details_are_found_at_their_seq(log) -> None:
    fill(8)
    log.update_one({"seq": 5}, {"$set": {"details.to": "closed"}})
    result = verify()
    assert not result.ok
    assert kinds(result) == [("altered", 5)]
    assert result.altered == 1
    assert result.broken_links == 0
    assert result.missing == 0


def test_altered_timestamp_is_found(log) -> None:
    fill(3)
    stored = log.find_one({"seq": 2})
    log.update_one({"seq": 2}, {"$set": {"at": stored["at"] - dt.timedelta(hours=1)}})
    assert kinds(verify()) == [("altered", 2)]


def test_rehashed_alteration_breaks_the_next_link(log) -> None:
    fill(6)
    raw = log.find_one({"seq": 3})
    raw["details"]["to"] = "closed"
    forged = audit.entry_hash(raw["seq"], raw["at"], raw["actor"], raw["action"],
                              raw["subject"], raw["details"], raw["prev_hash"])
    log.update_one({"seq": 3}, {"$set": {"details": raw["details"], "hash": forged}})
    result = verify()
    assert kinds(result) == [("broken_link", 4)]


def test_deleted_entry_is_reported_missing(log) -> None:
    fill(8)
    log.delete_one({"seq": 4})
    result = verify()
    assert kinds(result) == [("missing", 4)]
    assert result.missing == 1
    assert result.altered == 0
    assert result.broken_links == 0
    assert result.checked == 7


def test_deleted_range_and_deleted_head_are_reported(log) -> None:
    fill(10)
    log.delete_many({"seq": {"$in": [1, 6, 7, 8]}})
    result = verify()
    assert [(p.kind, p.seq, p.end_seq) for p in result.problems] == [
        ("missing", 1, None), ("missing", 6, 8)]
    assert result.missing == 4


def test_changed_prev_hash_is_a_broken_link(log) -> None:
    fill(6)
    log.update_one({"seq": 4}, {"$set": {"prev_hash": "f" * 64}})
    result = verify()
    # The entry's own hash covers prev_hash too, so it is also altered.
    assert sorted(kinds(result)) == [("altered", 4), ("broken_link", 4)]
    assert result.broken_links == 1


def test_anchor_detects_a_truncated_tail(log) -> None:
    fill(5)
    head = verify()
    anchor = (head.last_seq, head.last_hash)
    assert verify(anchor=anchor).ok  # type: ignore[arg-type]
    log.delete_many({"seq": {"$gte": 4}})
    assert verify().ok  # the chain alone cannot tell
    result = verify(anchor=anchor)  # type: ignore[arg-type]
    assert kinds(result) == [("anchor", 5)]


def test_details_must_be_plain_json(log) -> None:
    with pytest.raises(ValueError, match="JSON"):
        append("officer:1", "x.y", "dispatch:1", {"when": dt.datetime.now()})
    with pytest.raises(ValueError, match="JSON"):
        append("officer:1", "x.y", "dispatch:1", {"ratio": float("nan")})
    entry = append("officer:1", "x.y", "dispatch:1", {"ids": ("a", "b"), "n": 1.5})
    assert entry.details == {"ids": ["a", "b"], "n": 1.5}
    assert verify().ok


def test_forked_chain_is_reported_as_duplicate(log) -> None:
    fill(4)
    log.drop_indexes()  # what a deployment that never ran ensure_indexes would have
    copy = log.find_one({"seq": 3}, {"_id": 0})
    log.insert_one(copy)
    result = verify()
    assert ("duplicate", 3) in kinds(result)
    assert result.duplicates == 1
    assert not result.ok
