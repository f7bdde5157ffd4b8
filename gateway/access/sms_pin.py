"""Checking a registered reporter's SMS PIN, when a deployment requires one.

The PIN (sms/pin.py) is stored as a scrypt hash like a password. Guessing is
bounded per phone: after `sms_pin_max_failures` wrong PINs the phone's PIN is
not checked at all for `sms_pin_lockout_s`, so 10^4–10^6 PINs cannot be tried
by SMS. A message that fails is never dropped: the caller files it as an
unverified tip and says why.
"""

from __future__ import annotations

import secrets

from gateway.access.passwords import hash_secret, verify_secret
from gateway.extensions import redis_store
from gateway.privacy import phonebook
from gateway.records.people import Reporter
from gateway.runtime import settings

FAILS_KEY = "safegrid:sms:pinfail:{phone_tag}"
NEW_PIN_DIGITS = 6


def _fails_key(phone: str) -> str:
    return FAILS_KEY.format(phone_tag=phonebook.phone_tag(phone))


def problem(reporter: Reporter, phone: str, pin: str | None) -> str | None:
    """Why this message's PIN does not verify the sender (None when it does).

    One of sms.replies.PIN_PROBLEMS: pin_not_set, pin_missing, pin_locked, pin_wrong.
    """
    s = settings()
    if not reporter.sms_pin_hash:
        return "pin_not_set"
    if pin is None:
        return "pin_missing"
    key = _fails_key(phone)
    fails = redis_store.conn.get(key)
    if fails is not None and int(fails) >= s.sms_pin_max_failures:
        return "pin_locked"
    if verify_secret(pin, reporter.sms_pin_hash):
        redis_store.conn.delete(key)
        return None
    with redis_store.conn.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, s.sms_pin_lockout_s)
        pipe.execute()
    return "pin_wrong"


def issue(reporter: Reporter) -> str:
    """Give `reporter` a new random PIN; returns it (shown once, stored hashed)."""
    pin = f"{secrets.randbelow(10**NEW_PIN_DIGITS):0{NEW_PIN_DIGITS}d}"
    reporter.update(set__sms_pin_hash=hash_secret(pin))
    redis_store.conn.delete(_fails_key(reporter.phone))
    return pin


def clear(reporter: Reporter) -> None:
    """Remove `reporter`'s PIN (their messages are unverified while PINs are required)."""
    reporter.update(unset__sms_pin_hash=True)
