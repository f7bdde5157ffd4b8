"""Logging in from the app: password → a short-lived access token and a refresh token.

Passwords are checked against scrypt hashes (gateway/access/passwords.py). Five
wrong passwords for one account lock it for a while (counted in Redis, whoever
tries), besides the per-address limit on login attempts. A refresh token is
good once: using it returns a new pair; using an old one again revokes the
whole family (a stolen token was replayed).

Officers and supervisors enrolled with `safegrid mfa enroll` also send a TOTP
code (gateway/access/mfa.py); `SAFEGRID_MFA_REQUIRED_ROLES` makes that
compulsory for some roles. A wrong or replayed code counts as a wrong password.
Only a full login clears the failure count: a right password with a missing
code does not, or guessing codes would never lock the account.

Every refusal is a `Refusal` with the status the API answers (401, 403, 423).
"""

from __future__ import annotations

import secrets
from typing import Any

from gateway.access import mfa
from gateway.access.passwords import hash_secret, needs_rehash, verify_secret
from gateway.access.tokens import Principal, hash_token, issue_token, revoke_family, revoked
from gateway.errors import Refusal
from gateway.extensions import redis_store
from gateway.privacy import audit
from gateway.privacy.phonebook import phone_tag
from gateway.records.people import Officer, Reporter
from gateway.records.tokens import ApiToken
from gateway.settings import Settings
from grid.documents import utcnow
from sms.phones import InvalidPhone, normalise

FAILS_KEY = "safegrid:login:fails:{account}"
# Checked when the account is unknown too, so timing does not tell who has an account.
_DUMMY_HASH = hash_secret(secrets.token_hex(16))


def _account_key(phone: str) -> str:
    # The blind index, so Redis holds no phone numbers (nor a hash open to enumeration).
    return FAILS_KEY.format(account=phone_tag(phone))


def _locked(config: Settings, phone: str) -> bool:
    fails = redis_store.conn.get(_account_key(phone))
    return fails is not None and int(fails) >= config.login_max_failures


def _count_failure(config: Settings, phone: str) -> None:
    key = _account_key(phone)
    with redis_store.conn.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, config.login_lockout_s)
        pipe.execute()


def _refuse(config: Settings, phone: str, subject: str, details: dict[str, str]) -> Refusal:
    """A failed login: counted towards the lockout, audited, one answer for every cause."""
    _count_failure(config, phone)
    audit.append("anonymous", "auth.login_failed", subject, details)
    return Refusal(401, "wrong phone or password")


def _second_factor(config: Settings, officer: Officer, code: str | None, phone: str) -> None:
    """Refuse unless `officer` passes the TOTP check their enrolment and role call for."""
    who = f"{officer.role}:{officer.id}"
    if not officer.totp_secret:
        if officer.role in mfa.required_roles(config.mfa_required_roles):
            audit.append(who, "auth.login_refused", who, {"reason": "mfa_not_enrolled"})
            raise Refusal(403, f"a {officer.role} must log in with a one-time code, and this "
                               "account has none set up: ask an administrator to enrol you "
                               "(safegrid mfa enroll)",
                          errors={"otp": ["not_enrolled"]})
        return
    if code is None:
        raise Refusal(401, "a one-time code is needed: send `otp`, the 6 digits your "
                           "authenticator app shows for SafeGrid",
                      errors={"otp": ["required"]})
    if not mfa.accept(officer, code):
        raise _refuse(config, phone, who, {"factor": "otp"})


def _issue_pair(config: Settings, role: str, subject: Any, station: str | None,
                county: str | None, family: str) -> dict[str, Any]:
    common = {"subject_id": subject, "station_code": station, "county_code": county,
              "family": family}
    return {
        "access_token": issue_token(role, kind="access", lifetime_s=config.access_token_s,
                                    **common),
        "refresh_token": issue_token(role, kind="refresh", lifetime_s=config.refresh_token_s,
                                     **common),
        "token_type": "Bearer", "expires_in": config.access_token_s, "role": role,
    }


def authenticate(config: Settings, given_phone: str, password: str, otp: str | None,
                 roles: tuple[str, ...] | None = None) -> tuple[str, Officer | Reporter]:
    """Check phone, password and, when enrolled, the one-time code: (role, account).

    `roles` limits who may log in here (the police console takes officers and
    supervisors only): anyone else is refused 403 after their password is checked,
    so the refusal tells nothing to someone who does not know it.
    """
    try:
        phone = normalise(given_phone)
    except InvalidPhone:
        phone = given_phone
    if _locked(config, phone):
        raise Refusal(423, "too many wrong passwords or codes: try again later or ask your "
                           "administrator to unlock the account")
    officer = Officer.by_phone(phone).first()
    reporter = None if officer else Reporter.by_phone(phone).first()
    account = officer or reporter
    # A deactivated account fails as a wrong password does: no hint that it exists.
    stored = account.password_hash if account is not None and account.active else None
    if not verify_secret(password, stored or _DUMMY_HASH) or stored is None or account is None:
        raise _refuse(config, phone, f"account:{phone_tag(phone)}", {})
    role = officer.role if officer is not None else "reporter"
    if roles is not None and role not in roles:
        audit.append(f"{role}:{account.id}", "auth.login_refused", f"{role}:{account.id}",
                     {"reason": "role"})
        raise Refusal(403, f"a {role} may not log in here", errors={"role": [role]})
    if officer is not None:
        _second_factor(config, officer, otp, phone)
    if needs_rehash(stored):
        account.update(set__password_hash=hash_secret(password))
    redis_store.conn.delete(_account_key(phone))
    audit.append(f"{role}:{account.id}", "auth.login", f"{role}:{account.id}", {})
    return role, account


def log_in(config: Settings, given_phone: str, password: str, otp: str | None) -> dict[str, Any]:
    """Check phone, password and, when enrolled, the one-time code; a new token pair."""
    role, account = authenticate(config, given_phone, password, otp)
    if isinstance(account, Officer):
        station, county = account.station_code, account.county_code
    else:
        station, county = None, account.county_code
    return _issue_pair(config, role, account.id, station, county, secrets.token_hex(16))


def refresh(config: Settings, refresh_token: str) -> dict[str, Any]:
    """Exchange a refresh token, once, for a new pair; a replayed one ends the whole login."""
    key = hash_token(refresh_token)
    doc = ApiToken.objects(token_hash=key, kind="refresh").first()
    if doc is None or (doc.expires_at is not None and doc.expires_at <= utcnow()):
        raise Refusal(401, "unknown or expired refresh token")
    used = ApiToken.objects(id=doc.id, revoked=False).update_one(set__revoked=True)
    if not used:
        # Replayed: someone else holds a copy. End every token of this login.
        revoke_family(doc.family)
        audit.append("system:auth", "auth.refresh_replayed", f"family:{doc.family}", {})
        raise Refusal(401, "refresh token already used: this login has been ended")
    return _issue_pair(config, doc.role, doc.subject_id, doc.station_code, doc.county_code,
                       doc.family)


def log_out(principal: Principal, access_token: str) -> None:
    """End this login: the access token and every token of its family are revoked."""
    doc = ApiToken.objects(token_hash=hash_token(access_token)).first()
    if doc is not None and doc.family:
        revoke_family(doc.family)
    else:
        if doc is not None:
            ApiToken.objects(id=doc.id).update(set__revoked=True)
        revoked()
    audit.append(principal.actor, "auth.logout", principal.actor, {})
