"""The alert leg of the fault drill (bench/faults.py --leg alert): nobody missed, nobody
texted twice but for what was in flight.

A missing-child alert to `--alert-people` grid workers of the sample county (one ring
that covers it all), fanned out by RQ workers through real Kannel with fakesmsc as the
carrier, at a carrier rate that makes the fan-out last a while; meanwhile workers are
`kill -9`ed at random moments (a replacement starts at once, as systemd would) and
Redis is crashed and restarted. The sweeper (cron, every `--sweep` s) re-queues batches
whose lease expired. Then every phone's messages are counted where they matter, at the
carrier:

Kills go to the fast lane's workers, which run the alert jobs.

- missed: a grid worker of the ring fakesmsc never got the alert for;
- twice: a phone that got it more than once. A kill between Kannel taking a request and
  its batch recording it re-sends that request (at most 4 requests of 100 per kill, the
  batch job's requests in flight): at least once, so some are expected — the figure says
  how many, against that bound.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.county import insert_grid_workers
from bench.faults import (
    Chaos,
    DrillResult,
    Http,
    reap_orphans,
    start_stack,
    token_for,
    wait_for_workers,
)
from deploy.processes import Stack

SECRET = "drill-alert-secret"  # noqa: S105 - a throwaway webhook secret for this run


@dataclass
class AlertDrillResult:
    seed: int
    people: int
    log_dir: str
    kills: int = 0
    redis_restarts: int = 0
    seconds: float | None = None  # issue → every phone texted at least once
    missed: int = -1
    twice: int = -1  # phones texted more than once
    extra: int = -1  # messages beyond one per phone
    bound: int = 0  # the most a kill may re-send (requests in flight)
    timeline: str = ""

    @property
    def ok(self) -> bool:
        return self.missed == 0 and 0 <= self.extra <= self.bound

    def summary(self) -> str:
        took = f"{self.seconds:.1f} s" if self.seconds is not None else "not all reached"
        return "\n".join([
            f"alert leg (seed {self.seed}): {self.people} grid workers, {self.kills} worker "
            f"kills, {self.redis_restarts} Redis restarts",
            f"everyone texted at least once: {took}",
            f"missed: {self.missed}; phones texted more than once: {self.twice} "
            f"({self.extra} extra messages; a kill may re-send at most {self.bound})",
            f"faults: {self.timeline}", f"logs: {self.log_dir}"])


def phones(count: int) -> list[str]:
    return [f"+861395{i:06d}" for i in range(count)]


def _populate(people: list[str]) -> None:
    """Grid workers in every cell of the sample county, round robin."""
    from gateway.sample import COUNTY
    from grid.documents import GridCell

    cells = sorted(c.code for c in GridCell.objects(county_code=COUNTY).only("code"))
    insert_grid_workers(people, cells, COUNTY)


def run_alert_drill(stack_dir: Path, people: int = 3000, kills: int = 6,
                    redis_restart: bool = True, seed: int | None = None, *,
                    rate_per_s: int = 300, fast_workers: int = 2, sweep_s: int = 2,
                    redis_down_s: float = 3.0, settle_timeout_s: float = 180.0,
                    progress: Callable[[str], None] | None = None) -> AlertDrillResult:
    """Run the alert leg against a stack of its own under `stack_dir` (see the docstring)."""
    from gateway.alerts.fanout import PER_REQUEST, SEND_THREADS

    seed = random.SystemRandom().randrange(1 << 31) if seed is None else seed
    rng = random.Random(seed)
    say = progress or (lambda _msg: None)
    result = AlertDrillResult(seed=seed, people=people, log_dir=str(stack_dir / "logs"))
    faults_seen = DrillResult(seed=seed, reports_planned=0, rate_per_s=0.0)
    carrier_stack = Stack(stack_dir / "carrier")
    running = None
    try:
        kannel = carrier_stack.kannel("http://127.0.0.1:9/sms/inbound/kannel", SECRET)
        carrier = carrier_stack.fakesmsc(kannel)
        env = {"SAFEGRID_SWEEP_AFTER_S": str(sweep_s), "SAFEGRID_SWEEP_INTERVAL_S": str(sweep_s),
               "SAFEGRID_SMS_ENABLED": "true", "SAFEGRID_SMS_WEBHOOK_SECRET": SECRET,
               "SAFEGRID_KANNEL_SENDSMS_URL": kannel.sendsms_url,
               "SAFEGRID_KANNEL_USERNAME": kannel.username,
               "SAFEGRID_KANNEL_PASSWORD": kannel.password,
               "SAFEGRID_SMS_RATE_PER_S": str(rate_per_s)}
        say(f"alert leg: starting the stack under {stack_dir} (seed {seed})")
        running = start_stack(stack_dir, workers=1, fast_workers=fast_workers, extra_env=env)
        wait_for_workers(running)
        everyone = phones(people)
        _populate(everyone)
        fan_out_s = people / rate_per_s
        events = [(rng.uniform(0.1, 0.9) * fan_out_s, "kill") for _ in range(kills)]
        if redis_restart:
            events.append((rng.uniform(0.3, 0.6) * fan_out_s, "redis"))
        events.sort()

        say(f"alert leg: an alert to {people} grid workers at {rate_per_s}/s with {kills} "
            f"kills{' and a Redis crash' if redis_restart else ''}")
        supervisor_token = token_for(running.tokens, "supervisor")
        from gateway import gridcache
        from gateway.sample import cell_code

        snapshot = gridcache.current()
        lat, lon = snapshot.centre(cell_code(1, 1, 1))
        t0 = time.monotonic()
        chaos = Chaos(running, rng, faults_seen, t0)
        supervise = threading.Thread(target=chaos.supervise, daemon=True)
        supervise.start()
        status, answer = Http(running.port).request(
            "POST", "/api/v1/alerts", supervisor_token, json.dumps({
                "child": {"sex": "female", "age_years": 4, "clothing": "黄裙子"},
                "seen_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
                "location": {"lat": lat, "lon": lon}, "place": "县城车站",
                "rings": [{"radius_km": 30, "after_min": 0}]}).encode())
        if status != 201:
            raise RuntimeError(f"issuing the alert: {status} {answer!r}")
        code = json.loads(answer)["code"]

        def faults() -> None:
            for at, what in events:
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                if what == "kill":  # the fast lane's workers send alerts
                    chaos.kill_worker(lane="fast")
                else:
                    threading.Thread(target=chaos.crash_redis, args=(redis_down_s, False),
                                     daemon=True).start()

        chaos_thread = threading.Thread(target=faults, daemon=True)
        chaos_thread.start()
        got: Counter[str] = Counter()
        wanted = {p.lstrip("+") for p in everyone}
        deadline = time.monotonic() + fan_out_s + settle_timeout_s
        while time.monotonic() < deadline:
            for _, receiver, _, text in carrier.read_mt(timeout=1.0, count=people):
                if code in text:
                    got[receiver.lstrip("+")] += 1
            if wanted <= got.keys() and result.seconds is None:
                result.seconds = time.monotonic() - t0
                chaos_thread.join()
                deadline = min(deadline, time.monotonic() + 3 * sweep_s + 5)  # any late copy
        chaos.stop.set()
        supervise.join(5)
        result.kills = faults_seen.kills
        result.redis_restarts = faults_seen.redis_restarts
        result.timeline = "; ".join(f"{f.at:.1f}s {f.what}{f.detail}" for f in faults_seen.faults)
        result.missed = len(wanted - got.keys())
        result.twice = sum(1 for n in got.values() if n > 1)
        result.extra = sum(n - 1 for n in got.values())
        result.bound = result.kills * SEND_THREADS * PER_REQUEST
    finally:
        if running is not None:
            spawned = list(running.stack.services)
            running.stack.stop()
            reap_orphans(spawned)
        carrier_stack.stop()
    return result
