"""`safegrid` commands for accounts: tokens, passwords, lost phones, SMS PINs, second factors."""

from __future__ import annotations

import click

from gateway.access import mfa, sms_pin, tokens
from gateway.access.passwords import hash_secret, weakness
from gateway.access.tokens import issue_token
from gateway.cli.common import configure, e164, who_ran
from gateway.privacy import audit
from gateway.records.people import Officer, Reporter
from grid.documents import Station


@click.command("token")
@click.option("--role", required=True,
              type=click.Choice(["reporter", "officer", "supervisor", "admin", "auditor"]))
@click.option("--phone", help="The person's phone: the reporter's, or the officer's or "
                                "supervisor's (required for those roles).")
@click.option("--station", help="Role officer: must be the officer's station, if given.")
@click.option("--county", help="Role supervisor: must be the supervisor's county, if given.")
@click.option("--label", default=None,
              help="Who holds it (required for admin and auditor: a name or staff number).")
def token(role: str, phone: str | None, station: str | None, county: str | None,
          label: str | None) -> None:
    """Issue a bearer token for a person (printed once; only its hash is kept).

    Every token names someone: a reporter or officer found by --phone, or, for
    the admin and auditor roles, whoever --label names.
    """
    configure()
    subject = None
    if role == "reporter":
        reporter = Reporter.by_phone(e164(phone)).first() if phone else None
        if reporter is None or reporter.active is False:
            raise click.ClickException("--phone must name a registered reporter, not deactivated")
        subject, county = reporter.id, reporter.county_code
    elif role in ("officer", "supervisor"):
        officer = Officer.by_phone(e164(phone)).first() if phone else None
        if officer is None or officer.role != role or officer.active is False:
            raise click.ClickException(f"--phone must name a registered {role}, not deactivated: "
                                       "a token with nobody behind it could not be audited")
        if station and station != officer.station_code:
            raise click.ClickException(f"that {role} is at station {officer.station_code}, "
                                       f"not {station}")
        if county and county != officer.county_code:
            raise click.ClickException(f"that {role} is in county {officer.county_code}, "
                                       f"not {county}")
        subject, station, county = officer.id, officer.station_code, officer.county_code
        label = label or officer.name
    elif not (label and label.strip()):
        raise click.ClickException(f"--label must say who holds this {role} token")
    elif county is not None and not (len(county) == 6 and county.isdigit()):
        raise click.ClickException("--county must be a 6-digit county adcode (an admin token "
                                   "without one reaches every county)")
    if station and not Station.objects(code=station).first():
        raise click.ClickException("--station must name a known station")
    issued = issue_token(role, subject_id=subject, station_code=station, county_code=county,
                         label=label)
    audit.append(who_ran(), "token.issue", f"{role}:{subject or label}",
                 {"role": role, "station": station, "county": county})
    click.echo(issued)


@click.command("password")
@click.option("--phone", required=True, help="The officer's or reporter's phone.")
@click.password_option(help="The new password (asked twice when not given).")
def set_password(phone: str, password: str) -> None:
    """Set an account's password for app login (stored as a scrypt hash)."""
    configure()
    phone = e164(phone)
    account = Officer.by_phone(phone).first() or Reporter.by_phone(phone).first()
    if account is None:
        raise click.ClickException("no officer or reporter has that phone")
    problem = weakness(password, about=(phone, phone.removeprefix("+86"), account.name))
    if problem:
        raise click.ClickException(f"password not set: {problem} (OWASP ASVS 2.1)")
    account.update(set__password_hash=hash_secret(password))
    kind = "officer" if isinstance(account, Officer) else "reporter"
    audit.append(who_ran(), "account.password_set", f"{kind}:{account.id}", {})
    click.echo("password set")



@click.command("revoke-tokens")
@click.option("--phone", required=True, help="The lost or stolen phone's number.")
def revoke_tokens(phone: str) -> None:
    """Revoke every token of the account with this phone (a lost or stolen phone).

    Logins, refresh tokens and CLI-issued tokens alike, at once in every
    process (within SAFEGRID_TOKEN_CACHE_S should Redis be away). The person
    logs in again on a new phone.
    """
    configure()
    number = e164(phone)
    account = Officer.by_phone(number).first() or Reporter.by_phone(number).first()
    if account is None:
        raise click.ClickException("no officer or reporter has that phone")
    count = tokens.revoke_tokens(account.id)  # at once in every process
    kind = "officer" if isinstance(account, Officer) else "reporter"
    audit.append(who_ran(), "token.revoke_all", f"{kind}:{account.id}", {"tokens": count})
    click.echo(f"revoked {count} tokens of that {kind}")



@click.command("pin")
@click.option("--phone", required=True, help="The registered reporter's phone.")
@click.option("--clear", is_flag=True, help="Remove the PIN instead of issuing one.")
def sms_pin_cmd(phone: str, clear: bool) -> None:
    """Issue (print once) or remove a reporter's SMS PIN (SAFEGRID_SMS_PIN_REQUIRED)."""
    configure()
    reporter = Reporter.by_phone(e164(phone)).first()
    if reporter is None or reporter.role == "public":
        raise click.ClickException("no registered reporter has that phone")
    if clear:
        sms_pin.clear(reporter)
        audit.append(who_ran(), "reporter.sms_pin_clear", f"reporter:{reporter.id}", {})
        click.echo("PIN removed")
        return
    pin = sms_pin.issue(reporter)
    audit.append(who_ran(), "reporter.sms_pin_issue", f"reporter:{reporter.id}", {})
    click.echo(f"new SMS PIN: {pin}  (shown once; the reporter starts each SMS with P{pin})")



@click.group("mfa")
def mfa_group() -> None:
    """Second factor (TOTP) for officers' and supervisors' app login."""



def _officer(phone: str) -> Officer:
    officer = Officer.by_phone(e164(phone)).first()
    if officer is None:
        raise click.ClickException("no officer or supervisor has that phone")
    return officer



@mfa_group.command("enroll")
@click.option("--phone", required=True, help="The officer's or supervisor's phone.")
def mfa_enroll(phone: str) -> None:
    """Give an officer a new TOTP secret (replacing any) and print it once, to scan."""
    configure()
    officer = _officer(phone)
    secret = mfa.enroll(officer)
    audit.append(who_ran(), "officer.mfa_enroll", f"{officer.role}:{officer.id}", {})
    click.echo(mfa.provisioning_uri(secret, officer.phone))
    click.echo(f"secret (base32, shown once): {secret}")
    click.echo("scan the URI as a QR code, or type the secret, into the officer's "
               "authenticator app; from now on their app login needs its 6-digit code")



@mfa_group.command("remove")
@click.option("--phone", required=True, help="The officer's or supervisor's phone.")
def mfa_remove(phone: str) -> None:
    """Remove an officer's TOTP secret (e.g. a lost phone; enrol again afterwards)."""
    configure()
    officer = _officer(phone)
    had = mfa.remove(officer)
    audit.append(who_ran(), "officer.mfa_remove", f"{officer.role}:{officer.id}", {"had": had})
    click.echo("second factor removed" if had else "the officer had no second factor")

