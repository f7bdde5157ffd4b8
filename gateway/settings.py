"""SafeGrid settings: one frozen object, built from the environment once.

Tests build a `Settings` directly; nothing reads `os.environ` at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

PREFIX = "SAFEGRID_"


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str = "mongodb://127.0.0.1:27017/safegrid"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis behind Sentinel (`REDIS_SENTINELS=host1:26379,host2:26379,host3:26379`): the
    # master named `redis_master` is asked of the sentinels, and `redis_url` then gives only
    # the password and the database number (its host is not used). Empty: `redis_url` alone.
    redis_sentinels: str = ""
    redis_master: str = "safegrid"
    # Display zone for people; storage is always naive UTC.
    timezone: str = "Asia/Shanghai"
    # Nearest cell within this distance takes a point that falls in no cell.
    nearest_cell_max_m: float = 2000.0
    # Seconds a stored report may wait unrouted before the sweeper re-enqueues it.
    sweep_after_s: int = 20
    sweep_interval_s: int = 30
    # Bearer tokens are cached in each process for this long (one DB trip saved per request).
    token_cache_s: int = 30
    access_token_s: int = 15 * 60  # from login; refreshed with the refresh token
    refresh_token_s: int = 30 * 24 * 3600
    service_token_days: int = 90  # CLI-issued tokens (sample data, integrations)
    login_max_failures: int = 5  # then the account is locked for `login_lockout_s`
    login_lockout_s: int = 15 * 60
    # Officer roles whose app login needs a TOTP code too (`safegrid mfa enroll`),
    # comma-separated ("supervisor,officer"); empty: a second factor only for the enrolled.
    mfa_required_roles: str = ""
    page_size_max: int = 100
    # AES-256-GCM keys for personal data at rest, "kid:base64key,...": the first
    # encrypts, all decrypt (rotation: put the new key first, run `safegrid
    # reencrypt`, then drop the old one). `safegrid keys generate` makes one.
    data_keys: str = field(default="", repr=False)
    # JSON table of category → priority, SLA and extra recipients (grid/rules.py);
    # empty: the built-in defaults.
    routing_rules_file: str = ""
    # Acknowledgement deadlines by priority and the escalation chain's timing (seconds).
    sla_critical_s: int = 300
    sla_urgent_s: int = 1800
    sla_routine_s: int = 86400
    escalation_step_s: int = 300
    escalation_repeat_s: int = 900
    # Linking reports into cases: same category in the same or a neighbouring cell
    # within this window; and, when a key is set (hex, >= 16 bytes), the same phone
    # number or plate, compared by HMAC so clear values are never needed.
    case_window_s: int = 6 * 3600
    # A report joining a clue texts the station's duty phone at most once per clue in
    # this many seconds (the inbox shows every one at once); a report that raises the
    # clue's priority always texts. 0: a text for every joining report.
    witness_notice_every_s: int = 600
    # Reports closed as false_report/confirmed_no_crime are anonymised this long
    # after closing, unless under legal hold (gateway/custody/retention.py).
    retention_days: int = 365
    # Audit anchoring (gateway/privacy/audit_anchor.py): the cron appends the audit head to this
    # JSON-lines file, kept off the database's storage and shipped off-host; empty: off.
    audit_anchor_file: str = ""
    audit_anchor_interval_s: int = 300  # how often; an unmoved head is not rewritten
    # Place names in a report's text: the offline gazetteer first, then an online
    # geocoder (self-hosted Nominatim) when a URL is set. Results less precise
    # than `text_location_max_m` do not pick a cell (a county seat is not a place).
    geocoder_url: str = ""
    geocoder_user_agent: str = "SafeGrid"
    geocoder_timeout_s: float = 3.0
    geocoder_min_delay_s: float = 1.0
    geocoder_max_wait_s: float = 5.0
    text_location_max_m: float = 3000.0
    link_key: str = field(default="", repr=False)
    # Request bodies: larger ones are refused 413 before they are read (the same limit
    # is in deploy/nginx/safegrid.conf); JSON nested deeper is refused 400 unparsed.
    max_body_bytes: int = 65_536
    max_json_depth: int = 32
    # SMS through Kannel. Off until a deployment configures it: then replies,
    # receipts and duty-phone notices are queued on the `sms` queue.
    sms_enabled: bool = False
    # shared with Kannel's sms-service get-url and dlr-url
    sms_webhook_secret: str = field(default="", repr=False)
    kannel_sendsms_url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    kannel_username: str = "safegrid"
    kannel_password: str = field(default="", repr=False)
    sms_sender: str = "10690110"  # the reporting short code printed on the card
    # How the SMS gateway reaches SafeGrid (for delivery-report callbacks).
    public_base_url: str = "http://127.0.0.1:8000"
    sms_rate_per_s: float = 20.0  # what the carrier's contract allows
    public_tips_per_hour: int = 5  # per unknown number; beyond, stored for a person only
    # Service requests one Open311 API key may file in a clock hour; beyond, 429.
    open311_requests_per_key_hour: int = 60
    # Registered reporters start each SMS with their PIN (`safegrid pin`, sms/pin.py);
    # without a good one a message is still filed, as an unverified tip. After
    # `sms_pin_max_failures` wrong PINs a phone's PIN is not checked for `sms_pin_lockout_s`.
    sms_pin_required: bool = False
    sms_pin_max_failures: int = 5
    sms_pin_lockout_s: int = 24 * 3600
    # Abuse controls (gateway/security.py, docs/security.md). Limits are flask-limiter
    # strings ("30/minute;300/hour"), counted per client IP in Redis.
    rate_limits_enabled: bool = True
    # 401s on /api/ per presented token (per IP for requests with none); then 429 for a while
    rate_limit_auth_failures: str = "30/minute"
    # 401s for bad tokens per IP, all tokens together: wide, as a whole village's NAT shares it
    rate_limit_auth_failures_address: str = "300/minute"
    rate_limit_login: str = "10/minute;50/hour"  # POST /api/v1/auth/login per IP
    rate_limit_public: str = "20/hour"  # any public (unauthenticated) endpoint per IP
    # App reports a reporter files in a clock hour before the answer asks the app to slow
    # down (201 with slow_down and Retry-After). The report is stored and routed all the same.
    reports_per_reporter_hour: int = 60
    # Breaking the glass, per officer or supervisor: beyond this the view answers 429,
    # the refusal is audited and the county supervisor texted (an insider trawling).
    rate_limit_unseal: str = "20/day"
    # Kannel is one address on loopback/the private network: high, against a leaked secret.
    # High: a missing-child alert to 10,000 grid workers brings thousands of replies within
    # minutes; this only stops a leaked secret being used to flood the store.
    rate_limit_sms_webhook: str = "300/second;20000/minute"
    # Browser origins allowed to call /api/ cross-origin, comma-separated
    # ("https://console.example.cn"); empty: same-origin only, no CORS headers at all.
    cors_origins: str = ""
    # Reverse proxies in front (nginx: 1) whose X-Forwarded-For/-Proto are trusted;
    # per-IP limits see only the proxy's address unless this is set.
    proxy_hops: int = 0
    # Every client reaches SafeGrid over HTTPS (TLS ends at the proxy): always send HSTS.
    https_only: bool = False
    # Bearer token Prometheus presents at /metrics (docs/metrics.md); empty: /metrics
    # answers only requests from loopback that came through no proxy.
    metrics_token: str = field(default="", repr=False)
    # The police console (/console/, docs/console.md): a session ends after this long
    # without a click (the inbox's own refreshing does not count), and after
    # `console_session_max_s` whatever happens; the map draws tiles from this URL template
    # ("https://tiles.gongan.example/{z}/{x}/{y}.png", the bureau's own server) when set,
    # else the cells alone on a plain background (works offline on a police network).
    console_idle_s: int = 15 * 60
    console_session_max_s: int = 12 * 3600
    map_tiles_url: str = ""
    testing: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `SAFEGRID_*`, `MONGODB_URI` and `REDIS_URL`."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    kwargs: dict[str, object] = {}
    if "MONGODB_URI" in env:
        kwargs["mongodb_uri"] = env["MONGODB_URI"]
    if "REDIS_URL" in env:
        kwargs["redis_url"] = env["REDIS_URL"]
    if "REDIS_SENTINELS" in env:
        kwargs["redis_sentinels"] = env["REDIS_SENTINELS"]
    for name, default in vars(defaults).items():
        key = PREFIX + name.upper()
        if key not in env or name in {"extra"}:
            continue
        raw = env[key]
        try:
            if isinstance(default, bool):
                kwargs[name] = _bool(raw)
            elif isinstance(default, int):
                kwargs[name] = int(raw)
            elif isinstance(default, float):
                kwargs[name] = float(raw)
            else:
                kwargs[name] = raw
        except ValueError as exc:
            raise ValueError(f"{key}={raw!r} is not a valid {type(default).__name__}") from exc
    settings = Settings(**kwargs)  # type: ignore[arg-type]
    sentinel_addresses(settings.redis_sentinels)  # a malformed list fails here, by its name
    return settings


def sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` as (host, port) pairs; the port defaults to Sentinel's 26379."""
    addresses = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, "26379"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS={value!r}: {item!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses
