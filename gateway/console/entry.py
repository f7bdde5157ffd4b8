"""Logging in to the console (password and one-time code), out, and the language switch.

The login is the app's (gateway/access/login.py): the same lockout after wrong
passwords or codes, the same audit entries; only officers and supervisors are let
in, and a reporter's account is refused with a plain word. The login form is
guarded by a cookie of its own (double-submit), since there is no session yet.
"""

from __future__ import annotations

import hmac
import secrets

from flask import g, redirect, request, url_for
from werkzeug.wrappers import Response

from gateway.access.login import authenticate
from gateway.console import sessions, words
from gateway.console.site import (
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    blp,
    config,
    language,
    page,
    page_error,
    signed_in,
)
from gateway.console.words import N_
from gateway.errors import Refusal
from gateway.extensions import login_limit
from gateway.records.people import Officer

CONSOLE_ROLES = ("officer", "supervisor")
LANGUAGE_COOKIE_S = 365 * 86400
LOGIN_FORM_S = 15 * 60
FIELD_MAX = 200  # longer than any phone, password or code


def _secure() -> bool:
    return request.is_secure or config().https_only


def _login_page(status: int = 200, message: str | None = None, phone: str = "") -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = page("login.html", status, message=message, phone=phone, login_csrf=token,
                    expired=request.args.get("expired") == "1")
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_FORM_S, path=sessions.COOKIE_PATH,
                        httponly=True, samesite="Strict", secure=_secure())
    return response


@blp.get("/login")
def login() -> Response:
    return _login_page()


def _refusal_message(exc: Refusal) -> str:
    """What the login page says for each refusal of gateway/access/login.py."""
    if exc.status == 423:
        return N_("密码或验证码错误次数过多，账号已暂时锁定。请稍后再试或联系管理员。")
    if exc.status == 403 and exc.errors and "role" in exc.errors:
        return N_("控制台仅供民警和督导员使用。举报人请使用手机应用或短信。")
    if exc.status == 403:
        return N_("您的角色必须使用动态验证码登录，但账号尚未设置，请联系管理员。")
    if exc.errors and exc.errors.get("otp") == ["required"]:
        return N_("请输入身份验证器上显示的6位动态验证码。")
    return N_("手机号、密码或验证码错误。")


@blp.post("/login")
@login_limit
def login_post() -> Response:
    sent = request.form.get("csrf", "")
    kept = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not kept or not hmac.compare_digest(sent.encode("utf-8"), kept.encode("utf-8")):
        return page_error(403, N_("表单无效或已过期（缺少安全令牌）。请刷新页面后重试。"))
    phone = request.form.get("phone", "").strip()[:FIELD_MAX]
    password = request.form.get("password", "")[:FIELD_MAX]
    otp = request.form.get("otp", "").strip()[:FIELD_MAX] or None
    translate = words.translation(language()).gettext
    if not phone or not password:
        return _login_page(400, translate(N_("请填写手机号和密码。")), phone)
    try:
        role, account = authenticate(config(), phone, password, otp, roles=CONSOLE_ROLES)
    except Refusal as exc:
        return _login_page(exc.status, translate(_refusal_message(exc)), phone)
    assert isinstance(account, Officer)
    sid, current = sessions.start(config(), role, str(account.id), account.station_code,
                                  account.county_code, language())
    g.console_session = current
    response = redirect(url_for("console.county" if role == "supervisor" else "console.inbox_page"),
                        code=303)
    response.set_cookie(sessions.COOKIE, sid, path=sessions.COOKIE_PATH, httponly=True,
                        samesite="Strict", secure=_secure())
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=sessions.COOKIE_PATH)
    return response


@blp.post("/logout")
@signed_in(*CONSOLE_ROLES)
def logout() -> Response:
    sessions.end(request.cookies.get(sessions.COOKIE))
    response = redirect(url_for("console.login", bye="1"), code=303)
    response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
    return response


@blp.post("/language")
def choose_language() -> Response:
    """Switch the console's language; remembered in a cookie (and the session, if any).

    Not a one-off form and harmless, but still only with the session's CSRF token
    when logged in (the login page's own token otherwise).
    """
    chosen = words.language_of(request.form.get("language"))
    sid = request.cookies.get(sessions.COOKIE)
    current = sessions.load(config(), sid, touch=True)
    sent = request.form.get("csrf", "").encode("utf-8")
    expected = (current.csrf if current else request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    if not expected or not hmac.compare_digest(sent, expected.encode("utf-8")):
        return page_error(403, N_("表单无效或已过期（缺少安全令牌）。请刷新页面后重试。"))
    if current is not None and sid:
        sessions.save_language(config(), sid, current, chosen)
    back = request.form.get("next", "")
    if not back.startswith("/console/") or back.startswith("//"):
        back = url_for("console.home")
    response = redirect(back, code=303)
    response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=LANGUAGE_COOKIE_S,
                        path=sessions.COOKIE_PATH, samesite="Strict", secure=_secure())
    return response
