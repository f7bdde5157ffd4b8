"""What every `safegrid` command shares: configuring the process, who ran it, phone input."""

from __future__ import annotations

import getpass
import os

import click

from gateway.settings import from_env
from gateway.startup import configure as configure_process
from gateway.startup import ensure_indexes
from sms.phones import InvalidPhone, normalise


def configure() -> None:
    """Bind this process to the environment's settings and create the indexes."""
    configure_process(from_env())
    ensure_indexes()


def who_ran() -> str:
    """Who ran this command, for the audit log: `cli:` and the operating-system user."""
    return f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"


def e164(given: str) -> str:
    """A phone number from the command line, normalised to E.164 (how it is indexed)."""
    try:
        return normalise(given)
    except InvalidPhone as exc:
        raise click.ClickException(f"not a valid phone number ({exc.reason})") from exc
