"""What every `safegrid` command shares: configuring the process, who ran it, phone input.

Settings come from the environment. When a variable is not set there and the
current directory has `var/safegrid.env` (written by `make run`), its value is
taken from that file, so the CLI works against the SafeGrid `make run` started.
A missing or malformed setting is one sentence and exit status 2; a store that
cannot be reached is one sentence and exit status 1; never a traceback.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from gateway.settings import from_env
from gateway.startup import configure as configure_process
from gateway.startup import ensure_indexes
from sms.phones import InvalidPhone, normalise

LOCAL_ENV_FILE = Path("var") / "safegrid.env"
SETTINGS_ERROR = 2


def local_env(path: Path | None = None) -> dict[str, str]:
    """KEY=value lines of `path` (default LOCAL_ENV_FILE; none when it does not exist);
    comments and blanks skipped."""
    path = LOCAL_ENV_FILE if path is None else path
    if not path.is_file():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            found[key.strip()] = value.strip()
    return found


def configure() -> None:
    """Bind this process to the settings (environment, then var/safegrid.env); indexes."""
    for key, value in local_env().items():
        os.environ.setdefault(key, value)
    try:
        configure_process(from_env())
    except (RuntimeError, ValueError) as exc:  # a setting missing or malformed
        click.echo(f"safegrid: {exc}", err=True)
        sys.exit(SETTINGS_ERROR)
    try:
        ensure_indexes()  # the first thing to fail when the store is down
    except (PyMongoError, RedisError) as exc:
        raise click.ClickException(f"database error: {exc}") from exc


def who_ran() -> str:
    """Who ran this command, for the audit log: `cli:` and the operating-system user."""
    return f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"


def e164(given: str) -> str:
    """A phone number from the command line, normalised to E.164 (how it is indexed)."""
    try:
        return normalise(given)
    except InvalidPhone as exc:
        raise click.ClickException(f"not a valid phone number ({exc.reason})") from exc
