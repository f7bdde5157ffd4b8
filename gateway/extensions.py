"""Extensions, created unbound here and bound to an app in `create_app`."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import mongoengine
import redis
from flask import current_app, request
from flask.wrappers import Response
from flask_limiter import ApplicationLimit, Limiter
from flask_smorest import Api
from redis.sentinel import MasterNotFoundError, Sentinel

from gateway.settings import sentinel_addresses

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger(__name__)

api = Api()


class RedisHolder:
    """Holds the process's Redis connection; bound by `startup.configure`."""

    def __init__(self) -> None:
        self._conn: redis.Redis | None = None

    def bind(self, conn: redis.Redis) -> None:
        self._conn = conn

    @property
    def conn(self) -> redis.Redis:
        if self._conn is None:
            raise RuntimeError("Redis is not bound: call create_app() or startup.configure() first")
        return self._conn


redis_store = RedisHolder()

# Seconds a sentinel may take to answer "who is the master?" before the next one is asked.
SENTINEL_TIMEOUT_S = 1.0


def _url_auth(redis_url: str) -> dict[str, object]:
    """Password, user name and database number of a redis:// URL (Sentinel uses no host)."""
    parts = urlsplit(redis_url)
    found: dict[str, object] = {}
    if parts.password:
        found["password"] = unquote(parts.password)
    if parts.username:
        found["username"] = unquote(parts.username)
    path = parts.path.strip("/")
    found["db"] = int(path) if path.isdigit() else 0
    return found


def no_master_message(settings: Settings) -> str:
    """What SafeGrid says when its sentinels name no master (logs and /readyz)."""
    return (f"no Redis sentinel at {settings.redis_sentinels} names a master called "
            f"{settings.redis_master!r} (SAFEGRID_REDIS_MASTER): none answered, or none "
            "monitors that name; check `sentinel monitor` in their configuration and that "
            "they run")


def connect_redis(settings: Settings) -> redis.Redis:
    """The process's Redis connection: `redis_url`, or the master the sentinels name.

    Through Sentinel, each new connection asks the sentinels for the current master, so
    after a failover the next command reaches the new one. A sentinel set that names no
    master is logged here and seen by /readyz (503); the process still starts, and its
    commands fail with `MasterNotFoundError` (a `ConnectionError`, which workers wait out).
    """
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url)
    auth = _url_auth(settings.redis_url)
    # The sentinels and Redis share one password (deploy/compose/sentinel.conf).
    sentinel_auth = {k: v for k, v in auth.items() if k in {"password", "username"}}
    sentinel = Sentinel(
        sentinel_addresses(settings.redis_sentinels),
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT_S,
                         "socket_connect_timeout": SENTINEL_TIMEOUT_S, **sentinel_auth},
    )
    try:
        host, port = sentinel.discover_master(settings.redis_master)
        log.info("Redis master %r is %s:%s (from Sentinel)", settings.redis_master, host, port)
    except MasterNotFoundError:
        log.error("%s", no_master_message(settings))
    return sentinel.master_for(settings.redis_master, **auth)  # type: ignore[arg-type]


def limiter_storage(settings: Settings) -> tuple[str, dict[str, object]]:
    """The `limits` storage URI and options for the rate limiter: the same Redis as RQ."""
    if not settings.redis_sentinels:
        url = settings.redis_url
        if url.startswith("unix://"):  # `limits` spells a Unix socket `redis+unix://`
            url = "redis+unix://" + url[len("unix://"):]
        return url, {}
    hosts = ",".join(f"{h}:{p}" for h, p in sentinel_addresses(settings.redis_sentinels))
    auth = _url_auth(settings.redis_url)
    # Counts are read from the master too: a replica's lag would let a burst through.
    return (f"redis+sentinel://{hosts}/{settings.redis_master}",
            {"use_replicas": False, **auth,
             "sentinel_kwargs": {"socket_timeout": SENTINEL_TIMEOUT_S,
                                 "socket_connect_timeout": SENTINEL_TIMEOUT_S}})


def connect_db(settings: Settings) -> None:
    """Connect mongoengine's default alias to `settings.mongodb_uri` (once per process)."""
    mongoengine.disconnect()
    # Short server selection so /readyz answers 503 quickly when the store is down.
    mongoengine.connect(
        host=settings.mongodb_uri,
        uuidRepresentation="standard",
        tz_aware=False,
        serverSelectionTimeoutMS=3000,
    )


# --- Rate limits -------------------------------------------------------------
# One limiter, bound by `gateway.security.init_rate_limits` (called in create_app)
# to Redis at `settings.redis_url`. No global default: authenticated API calls
# are not limited by volume, only where abuse is likely (docs/security.md).


def client_address() -> str:
    """The rate-limit key: the client's IP; an IPv6 address counts as its /64.

    One subscriber usually holds a whole /64, so cutting there stops an attacker
    from rotating addresses. Behind nginx this is the real client only when
    SAFEGRID_PROXY_HOPS is set (ProxyFix, see gateway/security.py).
    """
    addr = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def limit_setting(name: str) -> Callable[[], str]:
    """The limit string in the current app's settings (read per request, so tests can vary it)."""

    def value() -> str:
        return str(getattr(current_app.config["SAFEGRID"], name))

    return value


def _auth_failed(response: Response) -> bool:
    return response.status_code == 401


def _outside_api() -> bool:
    return not request.path.startswith("/api/")


# Set by gateway.security (the limiter is here, the token check three floors up): "this
# request carries a valid token". Such a request is never refused for failures of others
# from its address: behind a village's NAT one attacker must not silence every reporter.
_valid_credentials: list[Callable[[], bool]] = []


def trust_valid_credentials(check: Callable[[], bool]) -> None:
    """Exempt requests for which `check()` is true from the failed-authentication limit."""
    _valid_credentials[:] = [check]


# Set by gateway.security: "no limit can count this request" (a valid token, and no
# limit on the endpoint but the failed-authentication one), so the limiter skips it.
_nothing_to_count: list[Callable[[], bool]] = []


def skip_limiter_when(check: Callable[[], bool]) -> None:
    """Let the limiter skip requests for which `check()` is true (it must hold only when
    no limit could refuse or count them)."""
    _nothing_to_count[:] = [check]


def _exempt_from_auth_failures() -> bool:
    return _outside_api() or any(check() for check in _valid_credentials)


def _presented_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def failed_auth_key() -> str:
    """Whose failures a 401 counts against: the token presented (by its hash, so no token
    material lands in Redis), or the client's address when it presented none.

    A phone replaying a revoked token is stopped without touching the budget of the
    reporters who share its address.
    """
    token = _presented_token()
    if token is None:
        return client_address()
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _exempt_from_address_failures() -> bool:
    # Requests with no token are already counted by address in the first bucket.
    return _exempt_from_auth_failures() or _presented_token() is None


# The failed-authentication limits: they exempt requests with a valid token.
AUTH_FAILURES_SCOPE = "auth-failures"
AUTH_FAILURES_ADDRESS_SCOPE = "auth-failures-address"
AUTH_FAILURES_SCOPES = (AUTH_FAILURES_SCOPE, AUTH_FAILURES_ADDRESS_SCOPE)

limiter = Limiter(
    key_func=client_address,
    key_prefix="safegrid",
    # One GET before and one INCR after a counted request; a burst of up to twice
    # the limit across a window boundary is acceptable for abuse control.
    strategy="fixed-window",
    # Redis down: never refuse a report because of the limiter. Errors are logged
    # and each process counts in memory until Redis answers again.
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    headers_enabled=False,  # no X-RateLimit-* on every answer; 429s carry Retry-After
    application_limits=[
        # Failed authentication across /api/, per presented token (per address without
        # one): checked before the view, so a client over the limit is refused before
        # its token is even looked up.
        ApplicationLimit(
            limit_provider=limit_setting("rate_limit_auth_failures"),
            key_function=failed_auth_key,
            scope=AUTH_FAILURES_SCOPE,
            deduct_when=_auth_failed,
            exempt_when=_exempt_from_auth_failures,
            error_message="too many failed authentications with this token or from this address",
        ),
        # ...and every bad token from one address together, with a budget wide enough
        # for a village's NAT: a spray of made-up tokens still meets a limit.
        ApplicationLimit(
            limit_provider=limit_setting("rate_limit_auth_failures_address"),
            scope=AUTH_FAILURES_ADDRESS_SCOPE,
            deduct_when=_auth_failed,
            exempt_when=_exempt_from_address_failures,
            error_message="too many failed authentications from this address",
        ),
    ],
)


@limiter.request_filter
def _preflight() -> bool:
    # CORS preflights carry no credentials and are answered by gateway/security.py.
    return request.method == "OPTIONS"


@limiter.request_filter
def _uncountable() -> bool:
    return any(check() for check in _nothing_to_count)


# Ready decorators. On a MethodView method, put it above the flask-smorest ones:
#
#     @blp.route("/auth/login")
#     class Login(MethodView):
#         @login_limit
#         @blp.arguments(LoginSchema)
#         def post(self, data): ...
#
# A wrong password should answer 401, so it also counts toward the failed-auth limit.
login_limit = limiter.limit(
    limit_setting("rate_limit_login"), methods=["POST"],
    error_message="too many login attempts from this address",
)
# For any endpoint that takes requests without credentials (public tips).
public_limit = limiter.limit(
    limit_setting("rate_limit_public"), error_message="too many requests from this address",
)
# Kannel's webhooks (applied to the whole `sms` blueprint in gateway/api/sms.py).
webhook_limit = limiter.limit(
    limit_setting("rate_limit_sms_webhook"),
    error_message="too many requests to the SMS webhook from this address",
)
