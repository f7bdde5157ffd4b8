"""`make run`: SafeGrid on this machine with the embedded store and sample data.

Starts Redis (AOF, under ./var/redis), SecantusDB (persistent, ./var/mongo),
loads the sample county on first start, then gunicorn, two RQ workers and the
cron scheduler; prints where to look and the tokens; Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy.processes import ROOT, Stack, app_env, find_program

VAR = ROOT / "var"
ANCHORS = VAR / "audit-anchors.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAFEGRID_PORT", 8000)))
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--mongo-port", type=int, default=27090)
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
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
        env = app_env(f"mongodb://127.0.0.1:{mongo.port}/safegrid",
                      f"redis://127.0.0.1:{redis.port}/0", _local_keys(),
                      SAFEGRID_AUDIT_ANCHOR_FILE=str(ANCHORS))
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
        for i in range(args.workers):
            stack.worker(env, name=f"worker-{i + 1}")
        stack.cron(env)
        base = f"http://127.0.0.1:{args.port}"
        print(f"""
SafeGrid is running.
  API docs      {base}/swagger   (OpenAPI: {base}/openapi.json)
  health        {base}/healthz  {base}/readyz
  logs          {VAR / 'log'}
  audit anchors {ANCHORS}
  tokens        {tokens}
""")
        if tokens.exists():
            print(tokens.read_text(encoding="utf-8"))
        print(_example(base, tokens))
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


def _example(base: str, tokens: Path) -> str:
    """A first report to try, and the station inbox it lands in (南台派出所's)."""
    reporter = officer = "<token>"
    if tokens.exists():
        for line in tokens.read_text(encoding="utf-8").splitlines():
            who, _, token = line.rpartition(": ")
            if who.startswith("reporter") and reporter == "<token>":
                reporter = token
            if who.startswith("officer 南台") and officer == "<token>":
                officer = token
    body = ('{"client_id": "try-0001-0001", "category": "CHILD", '
            '"details": "穿红衣男孩被陌生人抱上面包车", '
            '"location": {"lat": 27.4430, "lon": 104.8737}}')
    return "\n".join([
        "Try it (a report in 南台街道, then 南台派出所's inbox):",
        f"  curl -s -X POST {base}/api/v1/reports -H 'Authorization: Bearer {reporter}' "
        f"-H 'Content-Type: application/json' -d '{body}'",
        f"  curl -s {base}/api/v1/stations/530627-NT/dispatches "
        f"-H 'Authorization: Bearer {officer}'",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
