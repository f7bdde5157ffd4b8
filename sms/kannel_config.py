"""Reading and checking a Kannel configuration (kannel.conf) for SafeGrid.

Kannel itself reports a bad configuration only when bearerbox or smsbox start, and
then only some mistakes. This check reads the file as Kannel does (groups of
`key = value` lines, whole-line `#` comments, quoted values) and says what would
stop SafeGrid's traffic: the SMPP bind to the carrier, the smsbox ↔ bearerbox link,
sendsms for SafeGrid's workers, and the sms-service that hands every MO to SafeGrid.

`python -m sms.kannel_config FILE...` prints the problems and exits 1 if any.
Templates are accepted: `${NAME}` (envsubst, deploy/compose) counts as a value.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from sms.providers.kannel import SMS_SERVICE_GET_URL_TEMPLATE

# Groups Kannel 1.4.5 knows (gwlib/cfg.def); a misspelt one is silently ignored there.
KNOWN_GROUPS = frozenset({
    "core", "smsc", "smsbox", "smsbox-route", "sendsms-user", "sms-service", "ota-setting",
    "ota-bookmark", "wapbox", "wap-push-user", "ppg", "mysql-connection", "pgsql-connection",
    "sqlite3-connection", "redis-connection", "dlr-db", "modems", "radius-acct",
    "http-proxy", "include", "configuration", "wap-url-map", "wap-user-map",
})
SMPP_REQUIRED = ("smsc-id", "host", "port", "smsc-username", "smsc-password", "throughput")
# The query parameters SafeGrid's inbound webhook reads, with the escape Kannel fills in.
GET_URL_PARAMETERS = {k: v for k, v in parse_qsl(urlsplit(SMS_SERVICE_GET_URL_TEMPLATE.format(
    inbound_url="https://h/", sep="?", secret="x")).query) if k != "secret"}  # noqa: S106
INBOUND_PATH = "/sms/inbound/kannel"
# Kannel reads an unquoted value up to the first blank: these need quotes.
_NEEDS_QUOTES = re.compile(r"[\s;&#]")
_LINE = re.compile(r"^([a-z0-9-]+)\s*=\s*(.*)$")


@dataclass
class Group:
    """One `group = …` block: its kind, its settings in order, and where it starts."""

    kind: str
    line: int
    settings: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def get(self, key: str, default: str = "") -> str:
        return self.settings.get(key, default)


def _value(raw: str, where: str, problems: list[str]) -> str:
    raw = raw.strip()
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            problems.append(f"{where}: unterminated quoted value")
            return raw.strip('"')
        return raw[1:-1]
    if _NEEDS_QUOTES.search(raw):
        problems.append(f"{where}: a value with blanks, ';', '&' or '#' must be quoted")
    return raw


def parse(text: str, name: str = "kannel.conf") -> tuple[list[Group], list[str]]:
    """The groups of a Kannel configuration, and the problems met while reading it."""
    groups: list[Group] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{name}:{number}"
        match = _LINE.match(stripped)
        if match is None:
            problems.append(f"{where}: not a 'key = value' line: {stripped[:60]!r}")
            continue
        key, raw = match.groups()
        value = _value(raw, where, problems)
        if key == "group":
            if value not in KNOWN_GROUPS:
                problems.append(f"{where}: unknown group {value!r}")
            groups.append(Group(value, number))
            continue
        if not groups:
            problems.append(f"{where}: {key!r} outside any group")
            continue
        current = groups[-1]
        if key in current.settings:
            problems.append(f"{where}: {key!r} set twice in group {current.kind!r}")
        current.settings[key] = value
    return groups, problems


def _placeholder(value: str) -> bool:
    return value.startswith("${") or value.startswith("{")


def _int(group: Group, key: str, where: str, problems: list[str]) -> int | None:
    value = group.get(key)
    if _placeholder(value):
        return None
    if not value.isdigit():
        problems.append(f"{where}: {key} must be a number, not {value!r}")
        return None
    return int(value)


def _check_core(core: Group, groups: list[Group], name: str, problems: list[str]) -> None:
    where = f"{name}:{core.line} (core)"
    for key in ("admin-port", "admin-password", "smsbox-port"):
        if not core.get(key):
            problems.append(f"{where}: {key} is missing")
    storage = core.get("dlr-storage", "internal")
    if storage == "redis":
        ids = {g.get("id") for g in groups if g.kind == "redis-connection"}
        dbs = [g for g in groups if g.kind == "dlr-db"]
        if not dbs or any(g.get("id") not in ids for g in dbs):
            problems.append(f"{where}: dlr-storage = redis needs a dlr-db group whose id "
                            "names a redis-connection group")
    elif storage == "spool" and not core.get("dlr-spool"):
        problems.append(f"{where}: dlr-storage = spool needs dlr-spool (a directory)")
    if core.get("store-type") and not core.get("store-location"):
        problems.append(f"{where}: store-type without store-location")


def _check_smsc(smsc: Group, name: str, problems: list[str]) -> None:
    where = f"{name}:{smsc.line} (smsc {smsc.get('smsc-id') or '?'})"
    if smsc.get("smsc") != "smpp":
        return  # fakesmsc in tests, other protocols: not SafeGrid's carrier bind
    for key in SMPP_REQUIRED:
        if not smsc.get(key):
            problems.append(f"{where}: an SMPP bind needs {key}")
    _int(smsc, "port", where, problems)
    if smsc.get("transceiver-mode") not in {"true", "1", "yes"} and not smsc.get("receive-port"):
        problems.append(f"{where}: no transceiver-mode and no receive-port: the carrier's "
                        "MOs (reports by SMS) would never arrive")


def _check_get_url(service: Group, name: str, problems: list[str]) -> None:
    where = f"{name}:{service.line} (sms-service {service.get('keyword') or '?'})"
    url = service.get("get-url") or service.get("post-url")
    if not url:
        problems.append(f"{where}: no get-url: MOs would not reach SafeGrid")
        return
    parts = urlsplit(url)
    if not parts.path.endswith(INBOUND_PATH):
        problems.append(f"{where}: get-url goes to {parts.path!r}, not SafeGrid's "
                        f"{INBOUND_PATH}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not query.get("secret"):
        problems.append(f"{where}: get-url carries no secret= (SAFEGRID_SMS_WEBHOOK_SECRET)")
    for key, escape in GET_URL_PARAMETERS.items():
        if query.get(key) != escape:
            problems.append(f"{where}: get-url must carry {key}={escape}")
    if service.get("max-messages") != "0":
        problems.append(f"{where}: max-messages must be 0 (SafeGrid replies through "
                        "sendsms; smsbox must not turn the HTTP answer into an SMS)")


def check(text: str, name: str = "kannel.conf") -> list[str]:
    """What is wrong with this configuration for SafeGrid (empty: nothing found)."""
    groups, problems = parse(text, name)
    by_kind: dict[str, list[Group]] = {}
    for group in groups:
        by_kind.setdefault(group.kind, []).append(group)
    for kind in ("core", "smsbox"):
        if len(by_kind.get(kind, [])) != 1:
            problems.append(f"{name}: needs exactly one '{kind}' group, "
                            f"has {len(by_kind.get(kind, []))}")
    smscs = by_kind.get("smsc", [])
    if not smscs:
        problems.append(f"{name}: no 'smsc' group: nothing connects to a carrier")
    ids = [g.get("smsc-id") for g in smscs]
    for smsc_id in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"{name}: smsc-id {smsc_id!r} is used by more than one smsc group")
    for smsc in smscs:
        _check_smsc(smsc, name, problems)
    if len(by_kind.get("core", [])) == 1:
        core = by_kind["core"][0]
        _check_core(core, groups, name, problems)
        if len(by_kind.get("smsbox", [])) == 1:
            box = by_kind["smsbox"][0]
            where = f"{name}:{box.line} (smsbox)"
            for key in ("bearerbox-host", "bearerbox-port", "sendsms-port"):
                if not box.get(key):
                    problems.append(f"{where}: {key} is missing")
            if box.get("bearerbox-port") != core.get("smsbox-port"):
                problems.append(f"{where}: bearerbox-port {box.get('bearerbox-port')!r} is "
                                f"not core's smsbox-port {core.get('smsbox-port')!r}")
    users = by_kind.get("sendsms-user", [])
    if not users:
        problems.append(f"{name}: no 'sendsms-user': SafeGrid's workers could not send")
    for user in users:
        where = f"{name}:{user.line} (sendsms-user)"
        for key in ("username", "password"):
            if not user.get(key):
                problems.append(f"{where}: {key} is missing")
        forced = user.get("forced-smsc")
        if forced and not _placeholder(forced) and forced not in ids:
            problems.append(f"{where}: forced-smsc {forced!r} names no smsc group")
    services = by_kind.get("sms-service", [])
    defaults = [s for s in services if s.get("keyword") == "default"]
    if len(defaults) != 1:
        problems.append(f"{name}: needs one sms-service with keyword = default (every MO "
                        "goes to SafeGrid)")
    for service in services:
        _check_get_url(service, name, problems)
    return problems


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m sms.kannel_config KANNEL.CONF...", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        problems = check(Path(path).read_text(encoding="utf-8"), path)
        for problem in problems:
            print(problem)
        failed = failed or bool(problems)
        if not problems:
            print(f"{path}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
