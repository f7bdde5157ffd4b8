"""Logging in from the app: password (and a one-time code) → an access and a refresh token.

Lockout, second factor, refresh-once and logout: gateway/access/login.py.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gateway.access import login
from gateway.access.tokens import current_principal, require
from gateway.api.schemas import StrictSchema, error_responses
from gateway.extensions import login_limit
from gateway.settings import Settings

blp = Blueprint("auth", __name__, description="Login, token refresh and logout")


class LoginInSchema(StrictSchema):
    phone = fields.String(required=True, validate=validate.Length(3, 32))
    password = fields.String(required=True, validate=validate.Length(1, 200),
                             load_only=True)
    otp = fields.String(
        validate=validate.Regexp(r"^[0-9]{6}$", error="otp must be 6 digits"),
        load_only=True,
        metadata={"description": "the 6-digit code of the authenticator app; needed by "
                                 "officers and supervisors enrolled for a second factor "
                                 "(a 401 with errors.otp = [\"required\"] asks for it)"},
    )


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


@blp.route("/auth/login")
class Login(MethodView):
    @login_limit
    @error_responses(blp, 415)
    @blp.arguments(LoginInSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="wrong phone, password or one-time code; or, with "
                      "errors.otp = [\"required\"], the account needs a one-time code "
                      "(`otp`) as well")
    @blp.alt_response(403, description="the role must use a one-time code and the account "
                      "is not enrolled (errors.otp = [\"not_enrolled\"]): ask an "
                      "administrator")
    @blp.alt_response(423, description="too many wrong passwords or codes: the account is "
                      "locked")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Log in with phone, password and, when enrolled, a one-time code.

        Returns an access and a refresh token.
        """
        return login.log_in(_config(), data["phone"], data["password"], data.get("otp"))


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @login_limit
    @error_responses(blp, 415)
    @blp.arguments(RefreshInSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="unknown, expired, used or revoked refresh token")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Exchange a refresh token (once) for a new access and refresh token."""
        return login.refresh(_config(), data["refresh_token"])


@blp.route("/auth/logout")
class Logout(MethodView):
    @require("reporter", "officer", "supervisor", "admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 415)
    @blp.response(204)
    def post(self) -> None:
        """End this login: the access token and its refresh tokens are revoked."""
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        login.log_out(current_principal(), token)
