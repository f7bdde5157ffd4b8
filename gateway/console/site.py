"""The console's blueprint and the guards every page passes: session, CSRF, one-off forms,
its own Content-Security-Policy and error pages that say what went wrong.

Every POST carries the session's CSRF token (`csrf`, or the `X-CSRF-Token` header for
the page's script) and a one-off `once` marker: a form sent twice (a double click)
changes nothing the second time. Errors are pages, never JSON and never a bare 500.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import xstatic.pkg.leaflet as leaflet
from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_limiter import RateLimitExceeded
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from gateway.console import sessions, words
from gateway.console.sessions import ConsoleSession
from gateway.console.words import N_
from gateway.errors import Refusal
from gateway.settings import Settings

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

blp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
                static_folder="static", static_url_path="/static")

LANGUAGE_COOKIE = "sg_console_lang"
LOGIN_CSRF_COOKIE = "sg_console_login"
LEAFLET_DIR = Path(leaflet.BASE_DIR)
LEAFLET_FILES = frozenset({"leaflet.js", "leaflet.css"})
LEAFLET_ASSETS = f"/assets/leaflet/{leaflet.VERSION}/"
ASSET_MAX_AGE_S = 365 * 86400


def config() -> Settings:
    settings: Settings = current_app.config["SAFEGRID"]
    return settings


def console_csp(settings: Settings) -> str:
    """The console's policy: everything from SafeGrid itself, no inline script or style,
    no third-party origin; the bureau's own tile server for the map's images when set."""
    images = ["'self'", "data:"]
    if settings.map_tiles_url:
        parts = urlsplit(settings.map_tiles_url.replace("{", "").replace("}", ""))
        if parts.scheme in {"http", "https"} and parts.netloc:
            images.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join((
        "default-src 'none'", "script-src 'self'", "style-src 'self'",
        "img-src " + " ".join(images), "connect-src 'self'", "form-action 'self'",
        "frame-ancestors 'none'", "base-uri 'none'",
    ))


def session() -> ConsoleSession:
    """The logged-in person's session (only inside a `signed_in` view)."""
    current: ConsoleSession = g.console_session
    return current


def language() -> str:
    current = getattr(g, "console_session", None)
    if current is not None:
        return words.language_of(current.language)
    return words.language_of(request.cookies.get(LANGUAGE_COOKIE))


def page(template: str, status: int = 200, **context: Any) -> Response:
    """A console page in the reader's language."""
    response = make_response(render_template(f"console/{template}", **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_in(*roles: str, touch: bool = True) -> Callable[[F], F]:
    """Only for a live session of one of `roles`; else the login page (or 401 for scripts).

    `touch=False` for the inbox's own polling: it does not keep an idle session alive.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            sid = request.cookies.get(sessions.COOKIE)
            current = sessions.load(config(), sid, touch=touch)
            if current is None:
                if request.headers.get("X-Console-Script") or request.method == "POST":
                    message = words.translation(language()).gettext(
                        N_("登录已过期，请重新登录。") if sid else N_("请先登录。"))
                    if request.headers.get("X-Console-Script"):
                        return {"message": message, "login": url_for("console.login")}, 401
                    return page("error.html", 401, message=message, login=True)
                target = url_for("console.login", expired="1") if sid else url_for(
                    "console.login")
                return redirect(target, code=303)
            if current.role not in roles:
                return page_error(403, N_("此页面不对您的角色开放。"))
            g.console_session = current
            g.console_sid = sid
            if request.method == "POST":
                check_form(current)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


class FormRefused(Exception):
    """A post without the session's CSRF token, or one already sent."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_form(current: ConsoleSession) -> None:
    """Refuse a POST without this session's CSRF token, or a one-off form sent again."""
    token = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    if not hmac.compare_digest(token.encode("utf-8"), current.csrf.encode("utf-8")):
        raise FormRefused(403, N_("表单无效或已过期（缺少安全令牌）。请刷新页面后重试。"))
    once = request.form.get("once", "")
    if once and not sessions.first_time(once):
        raise FormRefused(409, N_("这个表单已经提交过了，没有重复处理。"))


def new_marker() -> str:
    """A one-off marker for a form (`once`): the second submission of it is refused."""
    return secrets.token_urlsafe(16)


def page_error(status: int, message: str, **context: Any) -> Response:
    """An error page: what went wrong, in the reader's language, and the way back."""
    text = words.translation(language()).gettext(message)
    return page("error.html", status, message=text, **context)


@blp.errorhandler(FormRefused)
def form_refused(exc: FormRefused) -> Response:
    return page_error(exc.status, exc.message)


@blp.errorhandler(Refusal)
def refused(exc: Refusal) -> Response:
    # The rooms below speak English to API clients; the page says it plainly.
    plain = {403: N_("您无权查看或处理这条线索（它属于其他派出所）。"),
             404: N_("没有找到这条线索。"),
             # Only the break-glass limit refuses with 429 from a room.
             429: N_("操作过于频繁：今日查看举报人身份的次数已达上限，督导员已收到通知。")}.get(
                 exc.status)
    if plain is not None:
        return page_error(exc.status, plain)
    translate = words.translation(language()).gettext
    current = exc.errors.get("current_status") if isinstance(exc.errors, dict) else None
    if exc.status == 409 and isinstance(current, str):
        state = translate(words.STATUSES.get(current, current))
        message = translate(N_("操作没有执行：这条线索现在是“{state}”状态（可能已有人处理）。"))
        return page("error.html", 409, message=message.format(state=state))
    return page("error.html", exc.status, message=exc.message)


@blp.errorhandler(RateLimitExceeded)
def too_many(exc: RateLimitExceeded) -> Response:
    return page_error(429, N_("操作过于频繁，请稍后再试。"))


@blp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    code = exc.code or 400
    if code == 413:
        return page_error(413, N_("提交的内容太长了，没有保存。"))
    if code == 404:
        return page_error(404, N_("没有这个页面。"))
    if code == 405:
        return page_error(405, N_("不能这样打开这个页面。"))
    return page("error.html", code, message=exc.description or exc.name)


@blp.errorhandler(Exception)
def unexpected(exc: Exception) -> Response:
    if isinstance(exc, PyMongoError | RedisError):
        log.error("store unavailable on %s %s: %s", request.method, request.path, exc)
        return page_error(503, N_("数据库暂时不可用，请稍后再试。"))
    log.exception("unhandled error on %s %s", request.method, request.path)
    return page_error(500, N_("出现意外错误，已记录。"))


@blp.after_request
def console_headers(response: Response) -> Response:
    # A page that sets a policy of its own keeps it: the printable monthly summary
    # (downloads.py) allows no script at all and only its own inline style.
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = console_csp(config())
    return response


@blp.context_processor
def console_words() -> dict[str, Any]:
    translation = words.translation(language())
    current = getattr(g, "console_session", None)
    return {"_": translation.gettext, "gettext": translation.gettext,
            "ngettext": translation.ngettext, "lang": language(),
            "languages": words.LANGUAGES, "me": current,
            "leaflet": LEAFLET_ASSETS, "words": words,
            "when": lambda at, date=True: words.local_time(at, config().timezone, date),
            "iso": words.iso_utc, "marker": new_marker}


@blp.get(LEAFLET_ASSETS + "<name>")
def leaflet_asset(name: str) -> Response:
    """Leaflet's script and stylesheet, from the XStatic-Leaflet package (no CDN)."""
    if name not in LEAFLET_FILES:
        return page_error(404, N_("没有这个页面。"))
    return send_from_directory(str(LEAFLET_DIR), name, max_age=ASSET_MAX_AGE_S)


@blp.get("/")
def home() -> Response:
    sid = request.cookies.get(sessions.COOKIE)
    current = sessions.load(config(), sid, touch=False)
    if current is None:
        return redirect(url_for("console.login"), code=303)
    return redirect(url_for("console.county" if current.role == "supervisor"
                            else "console.inbox_page"), code=303)


@blp.route("/<path:anything>", methods=["GET", "POST"])
def nowhere(anything: str) -> Response:
    """Any other address under /console/: a page that says so (not the API's JSON 404)."""
    if anything.startswith("dispatches/"):
        return page_error(404, N_("没有找到这条线索。"))
    return page_error(404, N_("没有这个页面。"))
