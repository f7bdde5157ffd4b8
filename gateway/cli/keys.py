"""`safegrid keys` and `reencrypt`: data-encryption keys, and stored data under the current one."""

from __future__ import annotations

import sys

import click

from gateway.cli.common import configure
from gateway.custody.sealed_data import SEALED, index_phones
from gateway.privacy.crypto import Keyring, ReencryptError, reencrypt


@click.group("keys")
def keys() -> None:
    """Data-encryption keys (SAFEGRID_DATA_KEYS)."""



@keys.command("generate")
@click.option("--kid", default="k1", help="The new key's id (e.g. k2 when rotating).")
def keys_generate(kid: str) -> None:
    """Print a new AES-256 key as `kid:base64`, to put first in SAFEGRID_DATA_KEYS."""
    click.echo(f"{kid}:{Keyring.generate_key()}")



@click.command("reencrypt")
def reencrypt_cmd() -> None:
    """Re-encrypt every personal-data field under the current (first) key.

    Also seals values stored in clear by older versions, and gives every stored
    phone number its blind index.
    """
    configure()
    try:
        count = reencrypt(SEALED, echo=click.echo)
    except ReencryptError as exc:
        click.echo(f"re-encrypted {exc.rewritten} values; some could not be: {exc}", err=True)
        sys.exit(1)
    click.echo(f"indexed {index_phones()} phone numbers")
    click.echo(f"re-encrypted {count} values")

