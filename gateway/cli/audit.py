"""`safegrid audit`: verifying the hash-chained audit log and anchoring its head."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway import runtime
from gateway.cli.common import configure
from gateway.privacy import audit_anchor
from gateway.privacy.audit import verify


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""



@audit_group.command("verify")
@click.option("--anchor", default=None, metavar="SEQ:HASH",
              help="A head recorded earlier outside the database: it must still be in the chain.")
@click.option("--anchors", "anchors_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An anchor file to check instead of SAFEGRID_AUDIT_ANCHOR_FILE.")
def audit_verify(anchor: str | None, anchors_file: Path | None) -> None:
    """Check every entry's hash and link; report altered, missing or reordered entries.

    Every head in the anchor file (SAFEGRID_AUDIT_ANCHOR_FILE, or --anchors) must
    still be in the chain with the same hash.
    """
    configure()
    head = None
    if anchor:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise click.BadParameter("expected SEQ:HASH (a number and 64 hex digits)")
        head = (int(seq), digest)
    if anchors_file is None and runtime.settings().audit_anchor_file:
        anchors_file = Path(runtime.settings().audit_anchor_file)
        if not anchors_file.exists():
            click.echo(f"no anchor file at {anchors_file} yet: no anchors checked")
            anchors_file = None
    recorded = audit_anchor.read(anchors_file) if anchors_file else audit_anchor.AnchorFile()
    result = verify(anchor=head, anchors=recorded.anchors)
    for number in recorded.unreadable:
        click.echo(f"anchor line {number} of {anchors_file}: unreadable "
                   "(a write torn by a crash, or an edit)")
    result.anchor_failures += len(recorded.unreadable)
    for line in result.summary():
        click.echo(line)
    sys.exit(0 if result.ok else 1)



@audit_group.command("anchor")
@click.option("--file", "anchor_file", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Append to this file instead of SAFEGRID_AUDIT_ANCHOR_FILE.")
def audit_anchor_cmd(anchor_file: Path | None) -> None:
    """Append the audit head to the anchor file now (what `safegrid cron` does periodically)."""
    configure()
    path = anchor_file or runtime.settings().audit_anchor_file
    if not path:
        raise click.ClickException("set SAFEGRID_AUDIT_ANCHOR_FILE or pass --file")
    try:
        done = audit_anchor.anchor(path)
    except OSError as exc:
        raise click.ClickException(f"cannot write the anchor file: {exc}") from exc
    if done.head is None:
        click.echo("the audit log is empty: nothing to anchor")
    else:
        click.echo(f"{'anchored' if done.written else 'unchanged since the last anchor'}: "
                   f"seq {done.head[0]} hash {done.head[1]} ({path})")
    if done.previous_broken:
        click.echo("the previously anchored entry has changed or is gone: "
                   "run `safegrid audit verify`", err=True)
        sys.exit(1)

