"""Logging in from the app: password → a short-lived access token and a refresh token.

Passwords are checked against scrypt hashes (gateway/passwords.py). Five wrong
passwords for one account lock it for a while (counted in Redis, whoever
tries), besides the per-address limit on login attempts. A refresh token is
good once: using it returns a new pair; using an old one again revokes the
whole family (a stolen token was replayed).
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from gateway import audit
from gateway.api.schemas import StrictSchema, error_responses
from gateway.auth import current_principal, hash_token, issue_token, require, token_cache
from gateway.documents import ApiToken, Officer, Reporter
from gateway.extensions import login_limit, redis_store
from gateway.passwords import hash_secret, needs_rehash, verify_secret
from gateway.phonebook import phone_index
from gateway.settings import Settings
from grid.documents import utcnow
from sms.phones import InvalidPhone, normalise

blp = Blueprint("auth", __name__, description="Login, token refresh and logout")

FAILS_KEY = "safegrid:login:fails:{account}"
# Checked when the account is unknown too, so timing does not tell who has an account.
_DUMMY_HASH = hash_secret(secrets.token_hex(16))


class LoginInSchema(StrictSchema):
    phone = fields.String(required=True, validate=validate.Length(3, 32))
    password = fields.String(required=True, validate=validate.Length(1, 200),
                             load_only=True)


class RefreshInSchema(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(10, 200))


class TokensSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
    role = fields.String(required=True)


def _config() -> Settings:
    config: Settings = current_app.config["SAFEGRID"]
    return config


def _account_key(phone: str) -> str:
    # The blind index, so Redis holds no phone numbers (nor a hash open to enumeration).
    return FAILS_KEY.format(account=phone_index(phone)[:32])


def _locked(phone: str) -> bool:
    fails = redis_store.conn.get(_account_key(phone))
    return fails is not None and int(fails) >= _config().login_max_failures


def _count_failure(phone: str) -> None:
    key = _account_key(phone)
    with redis_store.conn.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, _config().login_lockout_s)
        pipe.execute()


def _issue_pair(role: str, subject: Any, station: str | None, county: str | None,
                family: str) -> dict[str, Any]:
    config = _config()
    common = {"subject_id": subject, "station_code": station, "county_code": county,
              "family": family}
    return {
        "access_token": issue_token(role, kind="access", lifetime_s=config.access_token_s,
                                    **common),
        "refresh_token": issue_token(role, kind="refresh", lifetime_s=config.refresh_token_s,
                                     **common),
        "token_type": "Bearer", "expires_in": config.access_token_s, "role": role,
    }


@blp.route("/auth/login")
class Login(MethodView):
    @login_limit
    @error_responses(blp, 415)
    @blp.arguments(LoginInSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="wrong phone or password")
    @blp.alt_response(423, description="too many wrong passwords: the account is locked")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Log in with phone and password; returns an access and a refresh token."""
        try:
            phone = normalise(data["phone"])
        except InvalidPhone:
            phone = data["phone"]
        if _locked(phone):
            abort(423, message="too many wrong passwords: try again later or ask your "
                               "administrator to unlock the account")
        officer = Officer.by_phone(phone).first()
        reporter = None if officer else Reporter.by_phone(phone).first()
        account = officer or reporter
        stored = account.password_hash if account is not None else None
        if not verify_secret(data["password"], stored or _DUMMY_HASH) or stored is None:
            _count_failure(phone)
            audit.append("anonymous", "auth.login_failed",
                         "account:" + _account_key(phone).rsplit(":", 1)[-1], {})
            abort(401, message="wrong phone or password")
        assert account is not None
        if stored is not None and needs_rehash(stored):
            account.update(set__password_hash=hash_secret(data["password"]))
        redis_store.conn.delete(_account_key(phone))
        if officer is not None:
            role, station, county = officer.role, officer.station_code, officer.county_code
        else:
            role, station, county = "reporter", None, account.county_code
        audit.append(f"{role}:{account.id}", "auth.login", f"{role}:{account.id}", {})
        return _issue_pair(role, account.id, station, county, secrets.token_hex(16))


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @login_limit
    @error_responses(blp, 415)
    @blp.arguments(RefreshInSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="unknown, expired, used or revoked refresh token")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Exchange a refresh token (once) for a new access and refresh token."""
        key = hash_token(data["refresh_token"])
        doc = ApiToken.objects(token_hash=key, kind="refresh").first()
        if doc is None or (doc.expires_at is not None and doc.expires_at <= utcnow()):
            abort(401, message="unknown or expired refresh token")
        assert doc is not None
        used = ApiToken.objects(id=doc.id, revoked=False).update_one(set__revoked=True)
        if not used:
            # Replayed: someone else holds a copy. End every token of this login.
            ApiToken.objects(family=doc.family).update(set__revoked=True)
            token_cache.clear()
            audit.append("system:auth", "auth.refresh_replayed", f"family:{doc.family}", {})
            abort(401, message="refresh token already used: this login has been ended")
        return _issue_pair(doc.role, doc.subject_id, doc.station_code, doc.county_code,
                           doc.family)


@blp.route("/auth/logout")
class Logout(MethodView):
    @require("reporter", "officer", "supervisor", "admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 415)
    @blp.response(204)
    def post(self) -> None:
        """End this login: the access token and its refresh tokens are revoked."""
        from flask import request

        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        doc = ApiToken.objects(token_hash=hash_token(token)).first()
        if doc is not None:
            query = ApiToken.objects(family=doc.family) if doc.family else ApiToken.objects(
                id=doc.id)
            query.update(set__revoked=True)
        token_cache.clear()
        principal = current_principal()
        audit.append(f"{principal.role}:{principal.subject_id}", "auth.logout",
                     f"{principal.role}:{principal.subject_id}", {})
