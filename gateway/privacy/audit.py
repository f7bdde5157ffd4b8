"""The tamper-evident audit log: append-only entries chained by SHA-256.

Each entry's ``hash`` covers its own fields and the previous entry's hash
(``prev_hash``; the first entry's is 64 zeros). `verify` walks the chain in
``seq`` order and reports every altered entry, broken link and gap.

Callers put ids, states and reasons in ``details`` — never names, phone numbers
or report text in clear (the log is read by auditors, not only by police).

Limits, by design of a hash chain kept in the same database:

- Someone able to write the collection can rewrite the *whole tail* from an
  entry onwards and recompute every hash; the chain is then consistent again.
  Deleting the newest entries is likewise invisible from the chain alone.
  Against both, anchor the head outside the database: `gateway.privacy.audit_anchor`
  appends it to a file periodically (``SAFEGRID_AUDIT_ANCHOR_FILE``), and
  `VerifyResult.summary` prints it for any other external record (a ticket, a
  printed log, another system). ``verify(anchors=[...])`` checks that each
  recorded head is still there, unchanged.
- `append` needs no transaction: it reads the tail and inserts ``seq + 1``;
  the unique index on ``seq`` makes a concurrent writer's insert fail, and it
  retries on the new tail. That index must exist (``AuditEntry.ensure_indexes``)
  or concurrent appends may fork the chain (`verify` reports it as duplicates).
- Appends from all processes serialise on the tail: two round trips each, more
  under contention.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import mongoengine as me
from mongoengine.errors import NotUniqueError

GENESIS_HASH = "0" * 64
MAX_ATTEMPTS = 100

ProblemKind = Literal["altered", "broken_link", "missing", "duplicate", "anchor"]


def _utcnow_ms() -> dt.datetime:
    """Naive UTC now, cut to milliseconds: BSON dates keep no more, and the hash must survive
    the round trip."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _naive_utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at


def canonical(
    seq: int, at: dt.datetime, actor: str, action: str, subject: str,
    details: Mapping[str, Any], prev_hash: str,
) -> bytes:
    """The bytes an entry's hash covers: sorted-key compact JSON, UTF-8."""
    body = {
        "seq": seq,
        "at": _naive_utc(at).isoformat(timespec="milliseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(
    seq: int, at: dt.datetime, actor: str, action: str, subject: str,
    details: Mapping[str, Any], prev_hash: str,
) -> str:
    return hashlib.sha256(
        canonical(seq, at, actor, action, subject, details, prev_hash)
    ).hexdigest()


class AuditEntry(me.Document):
    """One audited event: a read of sealed data or a state change. Never updated."""

    seq = me.IntField(required=True, unique=True, min_value=1)
    at = me.DateTimeField(required=True)  # naive UTC, milliseconds
    actor = me.StringField(required=True, max_length=100)  # e.g. "officer:<id>", "system:sweeper"
    action = me.StringField(required=True, max_length=64)  # e.g. "dispatch.acknowledge"
    subject = me.StringField(required=True, max_length=100)  # e.g. "dispatch:<id>"
    details = me.DictField()  # ids, states, reasons; no personal data in clear
    prev_hash = me.StringField(required=True, min_length=64, max_length=64)
    hash = me.StringField(required=True, min_length=64, max_length=64)

    meta = {
        "collection": "audit_log",
        "indexes": [("subject", "seq")],  # an auditor's "history of this dispatch"
    }


class AuditAppendError(RuntimeError):
    """The entry could not be appended (the tail kept moving); the audited action must fail."""


def _json_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """`details` as plain JSON values, so what is stored is exactly what is hashed."""
    try:
        text = json.dumps(dict(details or {}), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"audit details must be JSON values (str, int, float, bool, None, list, dict): {exc}"
        ) from None
    plain: dict[str, Any] = json.loads(text)
    return plain


def append(
    actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None
) -> AuditEntry:
    """Append one entry at the tail of the chain and return it.

    Safe across threads and processes without transactions: read the tail, insert
    ``seq + 1``; if another writer took that seq (unique index), retry on the new
    tail, up to MAX_ATTEMPTS times with a little jitter, then AuditAppendError.
    """
    plain = _json_details(details)
    collection = AuditEntry._get_collection()
    for attempt in range(MAX_ATTEMPTS):
        tail = _tail(collection)
        seq = tail["seq"] + 1 if tail else 1
        prev_hash = tail["hash"] if tail else GENESIS_HASH
        at = _utcnow_ms()
        entry = AuditEntry(
            seq=seq, at=at, actor=actor, action=action, subject=subject, details=plain,
            prev_hash=prev_hash,
            hash=entry_hash(seq, at, actor, action, subject, plain, prev_hash),
        )
        try:
            entry.save(force_insert=True)
            _SEEN[0] = seq  # the tail is at least this now
        except NotUniqueError:
            # Another writer appended seq first. Back off a little so a crowd of
            # writers does not keep colliding in lock step.
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))  # noqa: S311 - jitter
            continue
        return entry
    raise AuditAppendError(f"could not append {action!r} after {MAX_ATTEMPTS} attempts")


# The highest seq this process has seen: the tail is at it or after it (entries are never
# renumbered), so the tail is read from there. SecantusDB walks the whole `seq` index for
# "the last one" (sort, limit 1): 30 ms at 2,000 entries, 410 ms at 20,000, for every
# entry appended; from a recent seq it reads a few. An emptied log (a test's fresh
# database) finds nothing there and is read whole once.
_SEEN = [0]


def _tail(collection: Any) -> dict[str, Any] | None:
    """The last entry's seq and hash (None for an empty log)."""
    fields = {"seq": 1, "hash": 1, "_id": 0}
    tail = None
    if _SEEN[0]:
        tail = collection.find_one({"seq": {"$gte": _SEEN[0]}}, fields, sort=[("seq", -1)])
    if tail is None:
        tail = collection.find_one({}, fields, sort=[("seq", -1)])
    _SEEN[0] = tail["seq"] if tail is not None else 0
    return tail


def head() -> tuple[int, str] | None:
    """The newest entry's (seq, hash); None for an empty log."""
    tail = _tail(AuditEntry._get_collection())
    return (tail["seq"], tail["hash"]) if tail else None


def hash_at(seq: int) -> str | None:
    """The stored hash of entry `seq`; None when there is no such entry."""
    raw = AuditEntry._get_collection().find_one({"seq": seq}, {"hash": 1, "_id": 0})
    return raw.get("hash") if raw else None


@dataclass(frozen=True)
class Anchor:
    """A head recorded outside the database; `source` names it in `verify`'s report."""

    seq: int
    hash: str
    source: str = "external anchor"


@dataclass(frozen=True)
class Problem:
    """One finding of `verify`. For ``missing``, seq..end_seq are absent."""

    kind: ProblemKind
    seq: int
    message: str
    end_seq: int | None = None


@dataclass
class VerifyResult:
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    altered: int = 0
    broken_links: int = 0
    missing: int = 0  # number of absent seqs
    duplicates: int = 0
    anchor_failures: int = 0
    anchors_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problems_truncated: bool = False

    @property
    def ok(self) -> bool:
        return not (self.altered or self.broken_links or self.missing or self.duplicates
                    or self.anchor_failures)

    def summary(self) -> list[str]:
        """Lines for `safegrid audit verify`; the head line is meant to be recorded elsewhere."""
        lines = [f"{p.kind} at seq {p.seq}" + (f"-{p.end_seq}" if p.end_seq else "")
                 + f": {p.message}" for p in self.problems]
        if self.problems_truncated:
            lines.append("(further problems not listed; see the counts)")
        lines.append(
            f"checked {self.checked} entries: {self.altered} altered, "
            f"{self.broken_links} broken links, {self.missing} missing, "
            f"{self.duplicates} duplicates, {self.anchor_failures} anchor failures"
        )
        if self.anchors_checked:
            lines.append(f"checked {self.anchors_checked} external anchors")
        if self.last_seq is not None:
            lines.append(f"head: seq {self.last_seq} hash {self.last_hash} "
                         "(record this outside the database)")
        lines.append("OK" if self.ok else "FAILED")
        return lines


def _stream() -> Iterator[dict[str, Any]]:
    # Raw documents, so verify sees exactly what is stored.
    cursor = AuditEntry._get_collection().find({}, {"_id": 0}, sort=[("seq", 1)],
                                               batch_size=1000)
    yield from cursor


def _stored_hash_of(raw: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(
        raw["seq"], raw["at"], raw["actor"], raw["action"], raw["subject"],
        raw.get("details") or {}, raw["prev_hash"],
    )).hexdigest()


def verify(*, anchor: tuple[int, str] | None = None, anchors: Iterable[Anchor] = (),
           max_problems: int = 1000) -> VerifyResult:
    """Check the whole chain in seq order: hashes, links, gaps; and externally kept heads.

    Each anchor (`anchor` and every one of `anchors`) must name an entry that is
    still there with the same hash. Only problems up to `max_problems` are
    listed; the counts are always complete.
    """
    result = VerifyResult()
    by_seq: dict[int, list[Anchor]] = {}
    for one in [*([Anchor(*anchor)] if anchor is not None else []), *anchors]:
        by_seq.setdefault(one.seq, []).append(one)
        result.anchors_checked += 1
    seen: set[int] = set()

    def report(problem: Problem) -> None:
        if len(result.problems) < max_problems:
            result.problems.append(problem)
        else:
            result.problems_truncated = True

    expected_seq = 1
    prev_stored_hash: str | None = GENESIS_HASH  # None: previous entry missing, link unknown
    for raw in _stream():
        seq = raw.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            result.altered += 1
            report(Problem("altered", expected_seq, f"entry with a non-integer seq {seq!r}"))
            prev_stored_hash = None
            continue
        result.checked += 1
        if result.first_seq is None:
            result.first_seq = seq
        if seq < expected_seq:
            result.duplicates += 1
            report(Problem("duplicate", seq, "a second entry with this seq (forked chain)"))
        elif seq > expected_seq:
            result.missing += seq - expected_seq
            end = seq - 1 if seq - 1 > expected_seq else None
            report(Problem("missing", expected_seq, f"{seq - expected_seq} entr"
                           + ("y" if seq - expected_seq == 1 else "ies") + " absent", end))
            prev_stored_hash = None
        stored_hash = raw.get("hash")
        try:
            computed = _stored_hash_of(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            computed = None
            reason = f"malformed entry ({type(exc).__name__})"
        else:
            reason = "content does not match its hash"
        if computed is None or computed != stored_hash:
            result.altered += 1
            report(Problem("altered", seq, reason))
        if prev_stored_hash is not None and raw.get("prev_hash") != prev_stored_hash:
            result.broken_links += 1
            report(Problem("broken_link", seq, "prev_hash is not the previous entry's hash"))
        for recorded in by_seq.get(seq, ()):
            seen.add(seq)
            if stored_hash != recorded.hash:
                result.anchor_failures += 1
                report(Problem("anchor", seq, f"{recorded.source}: hash differs from the "
                                              "recorded one"))
        prev_stored_hash = stored_hash if isinstance(stored_hash, str) else None
        expected_seq = max(expected_seq, seq + 1)
        result.last_seq = seq
        result.last_hash = stored_hash if isinstance(stored_hash, str) else None
    for seq in sorted(by_seq.keys() - seen):
        for recorded in by_seq[seq]:
            result.anchor_failures += 1
            report(Problem("anchor", seq, f"{recorded.source}: the recorded entry is "
                                          "gone (log truncated or rewritten)"))
    return result


def entries(after_seq: int, limit: int, subject: str | None = None) -> list[AuditEntry]:
    """Up to `limit` entries after `after_seq`, in order; only `subject`'s when given."""
    filters: dict[str, Any] = {"seq__gt": after_seq}
    if subject is not None:
        filters["subject"] = subject
    return list(AuditEntry.objects(**filters).order_by("seq").limit(limit))
