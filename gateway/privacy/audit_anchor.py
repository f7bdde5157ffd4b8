"""Anchoring the audit head outside the database, so a consistent rewrite is caught.

Someone who can write `audit_log` can recompute every hash from some entry on
(gateway/privacy/audit.py); the chain alone then looks fine. `anchor` appends the
current head, ``{"seq", "hash", "at"}``, as one JSON line to a file that the
database's users cannot reach (``SAFEGRID_AUDIT_ANCHOR_FILE``), and logs it,
so it reaches the system journal too. `safegrid audit verify` then checks that
every anchored (seq, hash) is still in the chain, unchanged.

`safegrid cron` runs `run_anchor` every ``audit_anchor_interval_s`` on the
maintenance queue, so the file is written on the host of the worker that takes
the job. Running it twice is harmless: an unmoved head is not written again,
and a lock on the file keeps the CLI and the job from interleaving.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gateway import telemetry
from gateway.privacy import audit
from gateway.runtime import settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Anchoring:
    """What one `anchor` call did. `head` is None for an empty log (nothing written)."""

    head: tuple[int, str] | None
    written: bool
    # The previous anchor's entry has another hash now, or is gone: the chain was rewritten.
    previous_broken: bool = False


@dataclass
class AnchorFile:
    """The anchors read from a file, and the numbers of lines that could not be read."""

    anchors: list[audit.Anchor] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)


def _parse(line: bytes) -> tuple[int, str, str]:
    """(seq, hash, at) of one anchor line; ValueError when it is not one."""
    try:
        record: Any = json.loads(line)
        seq, digest, at = record["seq"], record["hash"], record.get("at", "?")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not an anchor line ({type(exc).__name__})") from None
    if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1
            or not isinstance(digest, str) or len(digest) != 64):
        raise ValueError("not an anchor line (seq or hash)")
    return seq, digest, str(at)


def _tail(handle: IO[bytes]) -> tuple[bytes, bool]:
    """The file's last non-empty line, and whether the file ends with a newline."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return b"", True
    handle.seek(end - 1)
    ends_with_newline = handle.read(1) == b"\n"
    pos, buf = end, b""
    while pos > 0:
        step = min(4096, pos)
        pos -= step
        handle.seek(pos)
        buf = handle.read(step) + buf
        stripped = buf.rstrip(b"\n")
        cut = stripped.rfind(b"\n")
        if cut >= 0 or pos == 0:
            return stripped[cut + 1:], ends_with_newline
    return b"", ends_with_newline


def anchor(path: str | os.PathLike[str]) -> Anchoring:
    """Append the audit head to `path` unless it is already the file's last line.

    The file is opened for appending, never rewritten; each line is flushed
    and fsynced before this returns. The parent directory must exist: a
    missing one more likely means unmounted anchor storage than a new install.
    """
    path = Path(path)
    created = not path.exists()
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        current = audit.head()
        last_line, ends_with_newline = _tail(handle)
        try:
            last: tuple[int, str, str] | None = _parse(last_line) if last_line else None
        except ValueError:
            log.warning("audit anchor: the last line of %s is unreadable; appending anyway",
                        path)
            last = None
        broken = False
        if last is not None and audit.hash_at(last[0]) != last[1]:
            broken = True
            log.error("audit anchor: entry seq %d no longer has the hash anchored at %s "
                      "(log rewritten or truncated); run `safegrid audit verify`",
                      last[0], last[2])
        if current is None:
            log.info("audit head: the log is empty, nothing to anchor")
            return Anchoring(None, written=False, previous_broken=broken)
        seq, digest = current
        if last is not None and (last[0], last[1]) == current:
            log.info("audit head: seq %d hash %s (unchanged since %s)", seq, digest, last[2])
            return Anchoring(current, written=False, previous_broken=broken)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        line = json.dumps({"seq": seq, "hash": digest, "at": at}, sort_keys=True) + "\n"
        # A torn last line (a crash mid-write) stays a line of its own; verify reports it.
        handle.write((b"" if ends_with_newline else b"\n") + line.encode("ascii"))
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        _fsync_dir(path.parent)
    log.info("audit head: seq %d hash %s (anchored to %s)", seq, digest, path)
    return Anchoring(current, written=True, previous_broken=broken)


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\r\n")


def read(path: str | os.PathLike[str]) -> AnchorFile:
    """Every anchor in `path`, named by line number and time for `verify`'s report."""
    found = AnchorFile()
    for number, line in _lines(Path(path)):
        if not line.strip():
            continue
        try:
            seq, digest, at = _parse(line)
        except ValueError:
            found.unreadable.append(number)
            continue
        found.anchors.append(audit.Anchor(seq, digest, f"anchor line {number} ({at})"))
    return found


def run_anchor() -> Anchoring | None:
    """The cron job: anchor to ``audit_anchor_file``; None when anchoring is off. Idempotent."""
    path = settings().audit_anchor_file
    if not path:
        return None
    done = anchor(path)
    telemetry.mark("audit_anchor")  # for the "anchor stale" alert (deploy/prometheus/)
    return done
