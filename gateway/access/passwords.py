"""Hashing of human-chosen secrets (console passwords, PINs) with scrypt, which is memory-hard.

Stored as ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` so parameters can be
raised later: `needs_rehash` says when a stored hash is below the current ones
(rehash at the next successful login). Random API tokens do not need this:
they have 256 bits of entropy and are looked up by SHA-256 (`gateway.access.tokens`).
A short PIN stays guessable offline whatever the hash; rate-limit its attempts.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N = 2**14  # CPU/memory cost: 128 * N * R bytes = 16 MiB per hash, ~50 ms here
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# Refuse stored parameters beyond these, so a corrupted or hostile record cannot
# make one verification eat the machine.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
        maxmem=128 * n * r * p + 2 * 1024 * 1024,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_secret(secret: str) -> str:
    """A salted scrypt hash of `secret`, self-describing."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(secret, salt, N, R, P, HASH_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(n, r, p, salt, hash), or None when `stored` is not a hash we can check."""
    if not isinstance(stored, str):
        return None
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    valid = (
        1 < n <= _MAX_N and n & (n - 1) == 0
        and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P
        and len(salt) >= 8 and 16 <= len(digest) <= 64
    )
    return (n, r, p, salt, digest) if valid else None


def verify_secret(secret: str, stored: str) -> bool:
    """True when `secret` matches `stored`; False for a wrong secret or a malformed record."""
    parsed = _parse(stored)
    if parsed is None or not isinstance(secret, str):
        return False
    n, r, p, salt, digest = parsed
    try:
        candidate = _scrypt(secret, salt, n, r, p, len(digest))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored: str) -> bool:
    """True when `stored` is malformed or weaker than today's parameters."""
    parsed = _parse(stored)
    if parsed is None:
        return True
    n, r, p, salt, digest = parsed
    return n < N or r < R or p < P or len(salt) < SALT_BYTES or len(digest) < HASH_BYTES


# --- Choosing a password (ASVS 2.1.1, 2.1.7) ----------------------------------
MIN_LENGTH = 12
MIN_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable" against online attacks
_MAX_CHECKED = 100  # zxcvbn is superlinear; the rest of a long passphrase only helps


@functools.cache
def _breached() -> frozenset[str]:
    # Lazy: zxcvbn's frequency lists are large and slow to load; only a password
    # being set needs them, never a login or a worker.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def weakness(password: str, *, about: tuple[str, ...] = ()) -> str | None:
    """Why `password` must not be set (None when it may).

    Refuses short passwords, the 30,000 most common breached passwords (zxcvbn's
    offline list: nothing is sent anywhere), and anything zxcvbn scores below
    MIN_SCORE, counting `about` (the account's phone digits, name) as known.
    """
    from zxcvbn import zxcvbn  # lazy, as in _breached: only setting a password needs it

    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if password.lower() in _breached():
        return "this password is in lists of breached passwords; choose another"
    result = zxcvbn(password[:_MAX_CHECKED], user_inputs=list(about))
    if result["score"] < MIN_SCORE:
        hint = result["feedback"]["warning"] or " ".join(result["feedback"]["suggestions"])
        return "too easy to guess" + (f": {hint}" if hint else "; add more words")
    return None
