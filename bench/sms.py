"""SMS benchmark: the grammar's parse rate, and the Kannel inbound webhook with its storage write.

1. `sms.grammar.parse` over a varied corpus (bench/sms_parse.py), as a ratio
   to `str.split` over the same corpus in the same run (target ≥ 20,000/s).
2. The inbound webhook (`GET /sms/inbound/kannel`, as Kannel's get-url calls
   it) on gunicorn against SecantusDB: each call stores the raw message and
   queues its handling; measured against raw pymongo single inserts to the
   same server in the same run, with the same number of clients.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.intake import timed  # noqa: E402
from bench.sms_parse import main as parse_main  # noqa: E402
from deploy.processes import Stack, app_env  # noqa: E402

if TYPE_CHECKING:
    from pymongo.collection import Collection

SECRET = "bench-secret"  # noqa: S105 - a throwaway webhook secret for this run


def webhook(n: int, clients: int, rounds: int) -> tuple[list[float], list[float]]:
    """(baseline inserts/s, webhook calls/s) per round, interleaved."""
    from pymongo import MongoClient

    from gateway.privacy.crypto import Keyring

    stack = Stack(Path(tempfile.mkdtemp(prefix="safegrid-bench-sms-")))
    try:
        redis = stack.redis()
        mongo = stack.secantus()
        uri = f"mongodb://127.0.0.1:{mongo.port}/bench"
        env = app_env(uri, f"redis://127.0.0.1:{redis.port}/0",
                      f"bench:{Keyring.generate_key()}", SAFEGRID_SMS_WEBHOOK_SECRET=SECRET,
                      SAFEGRID_RATE_LIMITS_ENABLED="0")  # measure the code, not the limiter
        web = stack.gunicorn(env, workers=2, threads=4)
        raw: Collection[dict[str, Any]] = MongoClient(uri).bench.raw_inserts
        local = threading.local()
        text = "举报 拐卖儿童 村口面包车上有个哭闹的男孩".encode("utf-16-be").hex().upper()

        def call(i: int) -> None:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
            query = urlencode({"secret": SECRET, "id": str(uuid.uuid4()),
                               "from": f"+86139{i % 100_000_000:08d}", "to": "10690110",
                               "hex": text, "coding": "2", "charset": "UTF-16BE",
                               "ts": "1795440000", "smsc": "bench"})
            local.conn.request("GET", f"/sms/inbound/kannel?{query}")
            resp = local.conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"webhook answered {resp.status}")

        for i in range(20):
            call(i)
        baselines, rates = [], []
        for _ in range(rounds):
            baselines.append(timed(n, clients, lambda i: raw.insert_one(
                {"provider": "kannel", "message_id": f"raw-{uuid.uuid4()}", "text": text})))
            rates.append(timed(n, clients, call))
        return baselines, rates
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="webhook calls per round")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    status = parse_main([])
    baselines, rates = webhook(args.n, args.clients, args.rounds)
    ratios = sorted(r / b for r, b in zip(rates, baselines, strict=True))
    print(f"\ninbound webhook, {args.clients} clients, {args.n} calls x {args.rounds} rounds")
    print(f"raw pymongo insert_one:   {max(baselines):8.1f} /s best  (baseline)")
    print(f"GET /sms/inbound/kannel:  {max(rates):8.1f} /s best")
    print("ratio per round:          " + "  ".join(f"{r:.2f}" for r in ratios))
    print(f"ratio webhook / baseline: {ratios[len(ratios) // 2]:8.2f}   median")
    return status


if __name__ == "__main__":
    sys.exit(main())
