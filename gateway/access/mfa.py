"""A second factor for officers' app login: TOTP codes (RFC 6238) from an authenticator app.

The shared secret is stored sealed (`Officer.totp_secret`, gateway/privacy/crypto.py).
A code is good in its own 30-second step and one step either side (clock
drift), and once: a successful login records the step it matched, and a code
of that step or an earlier one is refused after that (replay protection).
"""

from __future__ import annotations

import time

import pyotp
from mongoengine.queryset.visitor import Q

from gateway.records.people import OFFICER_ROLES, Officer

ISSUER = "SafeGrid"
VALID_WINDOW = 1  # steps either side of now: ±30 s of clock drift


def required_roles(setting: str) -> frozenset[str]:
    """The officer roles `SAFEGRID_MFA_REQUIRED_ROLES` names (others are ignored)."""
    named = {part.strip().lower() for part in setting.split(",")}
    return frozenset(named & set(OFFICER_ROLES))


def provisioning_uri(secret: str, account: str) -> str:
    """The otpauth:// URI an authenticator app reads (usually as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step `code` belongs to within the accepted window, or None."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if now is None else now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if pyotp.utils.strings_equal(code, totp.generate_otp(step)):
            return step
    return None


def enroll(officer: Officer) -> str:
    """Give `officer` a fresh secret (replacing any) and return it, base32, to show once."""
    secret = pyotp.random_base32()
    officer.update(set__totp_secret=secret, unset__totp_last_step=True)
    officer.reload()
    return secret


def remove(officer: Officer) -> bool:
    """Drop `officer`'s secret; False when there was none."""
    had = bool(officer.totp_secret)
    officer.update(unset__totp_secret=True, unset__totp_last_step=True)
    return had


def accept(officer: Officer, code: str) -> bool:
    """True when `code` is valid now and not used before; records its step (atomically).

    The guarded update makes two logins racing with one code succeed at most once.
    """
    if not officer.totp_secret:
        return False
    step = matching_step(officer.totp_secret, code)
    if step is None:
        return False
    unused = Q(id=officer.id) & (Q(totp_last_step=None) | Q(totp_last_step__lt=step))
    return bool(Officer.objects(unused).update_one(set__totp_last_step=step))
