"""`make run`: SafeGrid on this machine with the embedded store and sample data.

Starts Redis (AOF, under ./var/redis), SecantusDB (persistent, ./var/mongo),
loads the sample county on first start, then gunicorn, RQ workers in two lanes
(one for SMS, critical clues and the sweeper, two for routing) and the cron
scheduler; prints where to look and the tokens; Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy.processes import ROOT, Stack, app_env, find_program

VAR = ROOT / "var"
ANCHORS = VAR / "audit-anchors.jsonl"
# The settings `make run` made, for the `safegrid` CLI to use from this directory
# (gateway/cli/common.py reads it when the variables are not set already).
ENV_FILE = VAR / "safegrid.env"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAFEGRID_PORT", 8000)))
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--mongo-port", type=int, default=27090)
    parser.add_argument("--workers", type=int, default=2,
                        help="RQ routing workers (besides the one fast-lane worker)")
    args = parser.parse_args()

    stack = Stack(VAR / "log")
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        print("==> starting Redis and SecantusDB (data under ./var)", flush=True)
        redis = stack.redis(args.redis_port, VAR / "redis")
        mongo = stack.secantus(args.mongo_port, str(VAR / "mongo"))
        # The cron anchors the audit head here (docs/security.md, A7); a deployment
        # keeps this file on other storage and ships it off-host.
        secret = _local_secret("sms-webhook-secret", "SAFEGRID_SMS_WEBHOOK_SECRET")
        env = app_env(f"mongodb://127.0.0.1:{mongo.port}/safegrid",
                      f"redis://127.0.0.1:{redis.port}/0", _local_keys(),
                      SAFEGRID_AUDIT_ANCHOR_FILE=str(ANCHORS),
                      SAFEGRID_SMS_WEBHOOK_SECRET=secret)
        _write_env_file(env)
        tokens = VAR / "sample-tokens.txt"
        loaded = subprocess.run(
            [find_program("safegrid"), "sample-data", "--if-empty", "--tokens-file", str(tokens)],
            env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True,
        )
        if loaded.returncode != 0:
            # Say why, not just that a step failed: the last lines are the error.
            print(loaded.stdout + loaded.stderr, file=sys.stderr)
            print("==> loading the sample data failed (above); stopping", file=sys.stderr)
            return 1
        print(loaded.stdout.splitlines()[0] if loaded.stdout else "sample data ready", flush=True)
        print("==> starting gunicorn, RQ workers and the cron scheduler", flush=True)
        stack.gunicorn(env, args.port)
        stack.lanes(env, route_workers=args.workers)
        stack.cron(env)
        base = f"http://127.0.0.1:{args.port}"
        print(f"""
SafeGrid is running.
  API docs      {base}/swagger   (OpenAPI: {base}/openapi.json)
  console       {base}/console/  (南台派出所's officer +8613800003002, the county supervisor
                +8613800003099; the sample password is below)
  health        {base}/healthz  {base}/readyz
  logs          {VAR / 'log'}
  audit anchors {ANCHORS}
  tokens        {tokens}
  SMS webhook   {base}/sms/inbound/kannel?secret={secret}  (SAFEGRID_SMS_WEBHOOK_SECRET)
  CLI settings  {ENV_FILE}  (`.venv/bin/safegrid …` from this directory uses them)
""")
        if tokens.exists():
            print(tokens.read_text(encoding="utf-8"))
        print(_example(base, tokens, secret))
        print("Press Ctrl-C to stop.", flush=True)
        while not stopping:
            for service in stack.services:
                if service.proc.poll() is not None:
                    print(f"!! {service.name} exited ({service.proc.returncode}); "
                          f"see {service.log_path}\n{service.log_tail(15)}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("==> stopping", flush=True)
        stack.stop()


def _local_secret(name: str, variable: str) -> str:
    """A random secret made on first start and kept in ./var (mode 600), unless set."""
    if os.environ.get(variable):
        return os.environ[variable]
    path = VAR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _write_env_file(env: dict[str, str]) -> None:
    """The settings of this run as KEY=value lines (mode 600: it holds the data key)."""
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())),
                        encoding="utf-8")
    ENV_FILE.chmod(0o600)


def _local_keys() -> str:
    """This machine's data key, made on first start and kept in ./var (mode 600).

    A deployment passes SAFEGRID_DATA_KEYS from its secret store instead.
    """
    if os.environ.get("SAFEGRID_DATA_KEYS"):
        return os.environ["SAFEGRID_DATA_KEYS"]
    path = VAR / "data-keys"
    if not path.exists():
        from gateway.privacy.crypto import Keyring

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"local1:{Keyring.generate_key()}\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _example(base: str, tokens: Path, secret: str) -> str:
    """A first app report, a first SMS, and where they land (南台派出所's inbox)."""
    found: dict[str, str] = {}
    if tokens.exists():
        for line in tokens.read_text(encoding="utf-8").splitlines():
            who, _, token = line.rpartition(": ")
            for role in ("reporter", "officer 南台", "supervisor", "auditor"):
                if who.startswith(role):
                    found.setdefault(role, token)
    reporter, officer = found.get("reporter", "<token>"), found.get("officer 南台", "<token>")
    supervisor, auditor = found.get("supervisor", "<token>"), found.get("auditor", "<token>")
    body = ('{"client_id": "try-0001-0001", "category": "CHILD", '
            '"details": "穿红衣男孩被陌生人抱上面包车", '
            '"location": {"lat": 27.4430, "lon": 104.8737}}')
    sms = ("id=try-sms-0001&from=%2B8613912340001&to=12110"
           "&text=R%20CHILD%20%E5%9F%8E%E5%85%B3%E8%BD%A6%E7%AB%99%E6%9C%89%E4%BA%BA%E6%8B%90"
           "%E5%B0%8F%E5%AD%A9")  # "R CHILD 城关车站有人拐小孩", from an unregistered phone
    return "\n".join([
        "Try it:",
        "  an app report in 南台街道 (as a registered reporter):",
        f"  curl -s -X POST {base}/api/v1/reports -H 'Authorization: Bearer {reporter}' "
        f"-H 'Content-Type: application/json' -d '{body}'",
        "  an SMS, as Kannel hands it over (a public tip; the reply is queued for Kannel):",
        f"  curl -s '{base}/sms/inbound/kannel?secret={secret}&{sms}'",
        "  南台派出所's inbox (officer), the county's overdue clues (supervisor), the audit trail:",
        f"  curl -s {base}/api/v1/stations/530627-NT/dispatches "
        f"-H 'Authorization: Bearer {officer}'",
        f"  curl -s {base}/api/v1/counties/530627/overdue -H 'Authorization: Bearer {supervisor}'",
        f"  curl -s '{base}/api/v1/audit?limit=5' -H 'Authorization: Bearer {auditor}'",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
