"""`safegrid` command line: sample data, tokens, workers, the sweeper."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.settings import from_env

if TYPE_CHECKING:
    from gateway.documents import Officer


def _configure() -> None:
    from gateway import runtime
    from gateway.extensions import ensure_indexes

    runtime.configure(from_env())
    ensure_indexes()


def _actor() -> str:
    """Who ran this command, for the audit log: `cli:` and the operating-system user."""
    import getpass

    return f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"


def _phone(given: str) -> str:
    """A phone number from the command line, normalised to E.164 (how it is indexed)."""
    from sms.phones import InvalidPhone, normalise

    try:
        return normalise(given)
    except InvalidPhone as exc:
        raise click.ClickException(f"not a valid phone number ({exc.reason})") from exc


@click.group()
def main() -> None:
    """SafeGrid administration."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command("init-db")
def init_db() -> None:
    """Create every collection's indexes."""
    _configure()
    click.echo("indexes ready")


@main.command("sample-data")
@click.option("--if-empty", is_flag=True, help="Do nothing when the sample county is there.")
@click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the tokens to this file (mode 600).")
def sample_data(if_empty: bool, tokens_file: Path | None) -> None:
    """Build the sample county and print tokens to try the API with."""
    from gateway import gridcache, sample

    _configure()
    if sample.is_loaded():
        if if_empty:
            click.echo("sample county already loaded")
            return
        raise click.ClickException("the sample county is already loaded; use an empty database")
    county = sample.build()
    gridcache.bump_version()
    lines = [f"{who}: {token}" for who, token in county.tokens.items()]
    lines.append(f"password of every sample account (app login by phone): {county.password}")
    click.echo(f"sample county {county.county_name}: {county.cells} grid cells, "
               f"{len(county.stations)} stations")
    click.echo("\n".join(lines))
    if tokens_file is not None:
        tokens_file.parent.mkdir(parents=True, exist_ok=True)
        tokens_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tokens_file.chmod(0o600)


@main.command("token")
@click.option("--role", required=True,
              type=click.Choice(["reporter", "officer", "supervisor", "admin", "auditor"]))
@click.option("--phone", help="The reporter's phone (role reporter).")
@click.option("--station", help="The officer's station code (role officer).")
@click.option("--county", help="6-digit county code (role supervisor).")
@click.option("--label", default=None)
def token(role: str, phone: str | None, station: str | None, county: str | None,
          label: str | None) -> None:
    """Issue a bearer token (printed once; only its hash is kept)."""
    from gateway.auth import issue_token
    from gateway.documents import Reporter
    from grid.documents import Station

    _configure()
    subject = None
    if role == "reporter":
        reporter = Reporter.by_phone(_phone(phone)).first() if phone else None
        if reporter is None:
            raise click.ClickException("--phone must name a registered reporter")
        subject, county = reporter.id, reporter.county_code
    if role == "officer":
        st = Station.objects(code=station).first() if station else None
        if st is None:
            raise click.ClickException("--station must name a known station")
        county = st.county_code
    if role == "supervisor" and not county:
        raise click.ClickException("--county is required for a supervisor")
    from gateway import audit

    issued = issue_token(role, subject_id=subject, station_code=station, county_code=county,
                         label=label)
    audit.append(_actor(), "token.issue", f"{role}:{subject or station or county or '-'}",
                 {"role": role})
    click.echo(issued)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.argument("queue_names", nargs=-1)
def worker(burst: bool, queue_names: tuple[str, ...]) -> None:
    """Run an RQ worker on the given queues (all, by priority, when none)."""
    from gateway.worker import run_worker

    _configure()
    sys.exit(0 if run_worker(queue_names, burst=burst) else 1)


@main.command("cron")
def cron() -> None:
    """Run the periodic jobs (the outbox sweeper) through RQ's cron scheduler."""
    from gateway.worker import run_cron

    _configure()
    run_cron()


@main.command("sweep")
@click.option("--older-than", type=int, default=None, help="Seconds (default from settings).")
def sweep(older_than: int | None) -> None:
    """Re-queue reports stored but not yet routed, once."""
    from gateway.jobs import sweep as sweep_job

    _configure()
    click.echo(f"re-queued {sweep_job(older_than)} reports")


@main.group("keys")
def keys() -> None:
    """Data-encryption keys (SAFEGRID_DATA_KEYS)."""


@keys.command("generate")
@click.option("--kid", default="k1", help="The new key's id (e.g. k2 when rotating).")
def keys_generate(kid: str) -> None:
    """Print a new AES-256 key as `kid:base64`, to put first in SAFEGRID_DATA_KEYS."""
    from gateway.crypto import Keyring

    click.echo(f"{kid}:{Keyring.generate_key()}")


@main.command("reencrypt")
def reencrypt_cmd() -> None:
    """Re-encrypt every personal-data field under the current (first) key.

    Also seals values stored in clear by older versions, and gives every stored
    phone number its blind index.
    """
    from gateway.crypto import ReencryptError, reencrypt
    from gateway.sealed_data import SEALED, index_phones

    _configure()
    try:
        count = reencrypt(SEALED, echo=click.echo)
    except ReencryptError as exc:
        click.echo(f"re-encrypted {exc.rewritten} values; some could not be: {exc}", err=True)
        sys.exit(1)
    click.echo(f"indexed {index_phones()} phone numbers")
    click.echo(f"re-encrypted {count} values")


@main.group("audit")
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
    from gateway import audit_anchor, runtime
    from gateway.audit import verify

    _configure()
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
    from gateway import audit_anchor, runtime

    _configure()
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


@main.command("password")
@click.option("--phone", required=True, help="The officer's or reporter's phone.")
@click.password_option(help="The new password (asked twice when not given).")
def set_password(phone: str, password: str) -> None:
    """Set an account's password for app login (stored as a scrypt hash)."""
    from gateway import audit
    from gateway.documents import Officer, Reporter
    from gateway.passwords import hash_secret, weakness

    _configure()
    phone = _phone(phone)
    account = Officer.by_phone(phone).first() or Reporter.by_phone(phone).first()
    if account is None:
        raise click.ClickException("no officer or reporter has that phone")
    problem = weakness(password, about=(phone, phone.removeprefix("+86"), account.name))
    if problem:
        raise click.ClickException(f"password not set: {problem} (OWASP ASVS 2.1)")
    account.update(set__password_hash=hash_secret(password))
    kind = "officer" if isinstance(account, Officer) else "reporter"
    audit.append(_actor(), "account.password_set", f"{kind}:{account.id}", {})
    click.echo("password set")


@main.command("revoke-tokens")
@click.option("--phone", required=True, help="The lost or stolen phone's number.")
def revoke_tokens(phone: str) -> None:
    """Revoke every token of the account with this phone (a lost or stolen phone).

    Logins, refresh tokens and CLI-issued tokens alike; each process notices
    within SAFEGRID_TOKEN_CACHE_S. The person logs in again on a new phone.
    """
    from gateway import audit
    from gateway.documents import ApiToken, Officer, Reporter

    _configure()
    number = _phone(phone)
    account = Officer.by_phone(number).first() or Reporter.by_phone(number).first()
    if account is None:
        raise click.ClickException("no officer or reporter has that phone")
    count = ApiToken.objects(subject_id=account.id, revoked=False).update(set__revoked=True)
    kind = "officer" if isinstance(account, Officer) else "reporter"
    audit.append(_actor(), "token.revoke_all", f"{kind}:{account.id}", {"tokens": count})
    click.echo(f"revoked {count} tokens of that {kind}")


@main.command("pin")
@click.option("--phone", required=True, help="The registered reporter's phone.")
@click.option("--clear", is_flag=True, help="Remove the PIN instead of issuing one.")
def sms_pin_cmd(phone: str, clear: bool) -> None:
    """Issue (print once) or remove a reporter's SMS PIN (SAFEGRID_SMS_PIN_REQUIRED)."""
    from gateway import audit, sms_pin
    from gateway.documents import Reporter

    _configure()
    reporter = Reporter.by_phone(_phone(phone)).first()
    if reporter is None or reporter.role == "public":
        raise click.ClickException("no registered reporter has that phone")
    if clear:
        sms_pin.clear(reporter)
        audit.append(_actor(), "reporter.sms_pin_clear", f"reporter:{reporter.id}", {})
        click.echo("PIN removed")
        return
    pin = sms_pin.issue(reporter)
    audit.append(_actor(), "reporter.sms_pin_issue", f"reporter:{reporter.id}", {})
    click.echo(f"new SMS PIN: {pin}  (shown once; the reporter starts each SMS with P{pin})")


@main.group("mfa")
def mfa_group() -> None:
    """Second factor (TOTP) for officers' and supervisors' app login."""


def _officer(phone: str) -> Officer:
    from gateway.documents import Officer

    officer = Officer.by_phone(_phone(phone)).first()
    if officer is None:
        raise click.ClickException("no officer or supervisor has that phone")
    return officer


@mfa_group.command("enroll")
@click.option("--phone", required=True, help="The officer's or supervisor's phone.")
def mfa_enroll(phone: str) -> None:
    """Give an officer a new TOTP secret (replacing any) and print it once, to scan."""
    from gateway import audit, mfa

    _configure()
    officer = _officer(phone)
    secret = mfa.enroll(officer)
    audit.append(_actor(), "officer.mfa_enroll", f"{officer.role}:{officer.id}", {})
    click.echo(mfa.provisioning_uri(secret, officer.phone))
    click.echo(f"secret (base32, shown once): {secret}")
    click.echo("scan the URI as a QR code, or type the secret, into the officer's "
               "authenticator app; from now on their app login needs its 6-digit code")


@mfa_group.command("remove")
@click.option("--phone", required=True, help="The officer's or supervisor's phone.")
def mfa_remove(phone: str) -> None:
    """Remove an officer's TOTP secret (e.g. a lost phone; enrol again afterwards)."""
    from gateway import audit, mfa

    _configure()
    officer = _officer(phone)
    had = mfa.remove(officer)
    audit.append(_actor(), "officer.mfa_remove", f"{officer.role}:{officer.id}", {"had": had})
    click.echo("second factor removed" if had else "the officer had no second factor")


@main.group("retention")
def retention_group() -> None:
    """Data lifecycle: anonymising unfounded reports, legal holds."""


@retention_group.command("run")
def retention_run() -> None:
    """Anonymise reports closed as unfounded longer ago than SAFEGRID_RETENTION_DAYS."""
    from gateway import retention, runtime

    _configure()
    anonymised, held = retention.run(runtime.settings().retention_days)
    click.echo(f"anonymised {anonymised} reports; {held} kept under legal hold")


@retention_group.command("hold")
@click.argument("report_code")
@click.option("--release", is_flag=True, help="Lift the hold instead of setting it.")
@click.option("--reason", required=True, help="Why (audited).")
def retention_hold(report_code: str, release: bool, reason: str) -> None:
    """Put a report under legal hold (or release it): it is then never anonymised."""
    from gateway.retention import set_hold

    _configure()
    if not set_hold(report_code, not release, actor=_actor(), reason=reason):
        raise click.ClickException(f"no report {report_code.upper()}")
    click.echo(f"{report_code.upper()}: legal hold {'released' if release else 'set'}")


from gateway.cli_grid import grid  # noqa: E402 - registered after main is defined

main.add_command(grid)
