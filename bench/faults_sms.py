"""The SMS leg of the fault drill (bench/faults.py --leg sms): no SMS lost, none handled twice.

A burst of inbound SMS through the real webhook (gunicorn), as Kannel hands them
over: registered reporters texting reports, free text, help and status
questions, and several first messages from new numbers racing each other (public
tips, so some meet the hourly tip limit). Meanwhile RQ workers of both lanes are
`kill -9`ed at random moments (a replacement starts at once) and Redis is crashed
and restarted; the client retries a failed webhook call with the same message
id, as Kannel does. SMS sending is on, to a sendsms stand-in on loopback that
counts what it is handed. After the load the sweepers run (cron, every
`--sweep` s, then once more here), and every message is checked for exactly
one outcome:

- lost: answered 200 but not stored; still `stored` (never handled); a texted
  report with no report filed; a handled message with no reply recorded; a reply
  recorded but never handed to the carrier;
- twice: more than one report for one message; a message both filed as a report
  and refused by the tip limit; one reply handed to the carrier twice.

One case of a reply handed over twice is the contract, not a fault: a worker
killed after the carrier took the message and before it recorded it as sent
leaves the message `queued` under its claim; when the claim expires
(`SEND_CLAIM_S`) the sweeper sends it again (at least once, never lost: whether
the carrier took it cannot be known). Such a resend is counted apart, and only
when the drill killed the worker running that message's send job after the
carrier's first call, and the second call came after the claim expired;
anything else handed over twice is `twice`.
"""

from __future__ import annotations

import http.client
import random
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.faults import Chaos, DrillResult, Http, reap_orphans, start_stack, wait_for_workers

SHORT_CODE = "10690110"
REGISTERED = tuple(f"+86138000010{i:02d}" for i in range(1, 11))  # the sample reporters


class SendSms:
    """A stand-in for Kannel's sendsms interface: answers `0: Accepted`, counts each ref."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # message ref (from its dlr-url) → calls
        self.times: dict[str, list[float]] = {}  # message ref → when each call came
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                found = re.search(r"[?&]ref=([^&]*)", (query.get("dlr-url") or [""])[0])
                ref = urllib.parse.unquote(found.group(1).replace("%%", "%")) if found else "?"
                with outer.lock:
                    outer.calls[ref] += 1
                    outer.times.setdefault(ref, []).append(time.monotonic())
                body = b"0: Accepted for delivery"
                self.send_response(202)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/sendsms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class PlannedSms:
    message_id: str
    sender: str
    text: str
    new_number: bool


def plan_sms(count: int, rng: random.Random, cells: list[str], prefix: str,
             new_numbers: int) -> list[PlannedSms]:
    """`count` messages; the first ones include 3 first messages from each new number."""
    planned = []
    for n in range(new_numbers):  # several first messages from new numbers, at once
        phone = f"+86139{rng.randrange(10**7, 10**8)}"
        planned += [PlannedSms(f"{prefix}-new{n}-{k}", phone, f"R 1 陌生人带小孩 {n}-{k}", True)
                    for k in range(3)]
    kinds = ("R 1 @{cell} 男孩被抱上面包车", "R 2 @{cell} 外地媳妇不让出门",
             "村口有人带着哭闹的小孩", "帮助", "R 4 @{cell} 砖厂童工")
    i = 0
    while len(planned) < count:
        text = kinds[rng.randrange(len(kinds))].format(cell=cells[i % len(cells)])
        planned.append(PlannedSms(f"{prefix}-{i:05d}", REGISTERED[i % len(REGISTERED)],
                                  f"{text} #{i}", False))
        i += 1
    rng.shuffle(planned[new_numbers * 3:])
    return planned[:count]


@dataclass
class SmsDrillResult:
    seed: int
    planned: int
    answered: int = 0
    not_answered: list[str] = field(default_factory=list)
    retries: int = 0
    kills: int = 0
    redis_restarts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    resent_after_kill: list[str] = field(default_factory=list)
    kills_mid_send: int = 0  # workers killed while running an SMS send job
    reports_filed: int = 0
    replies: int = 0
    sendsms_calls: int = 0
    settled_s: float | None = None
    timeline: str = ""
    log_dir: str = ""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.twice and not self.not_answered

    def summary(self) -> str:
        return "\n".join([
            f"SMS leg, seed {self.seed}: {self.planned} inbound SMS through the webhook; "
            f"{self.kills} worker kill -9, {self.redis_restarts} Redis crash+restart",
            f"answered 200:        {self.answered}  (retried calls {self.retries}; "
            f"never answered {len(self.not_answered)})",
            f"outcomes:            {dict(sorted(self.outcomes.items()))}",
            f"reports filed:       {self.reports_filed}",
            f"replies recorded:    {self.replies}; handed to the carrier {self.sendsms_calls}",
            f"lost:                {len(self.lost)}",
            f"handled twice:       {len(self.twice)}",
            f"resent after a kill: {len(self.resent_after_kill)} of {self.kills_mid_send} "
            f"killed mid-send  (the carrier took it, its sender died before recording it)",
            "settled after load:  "
            + (f"{self.settled_s:.1f} s" if self.settled_s is not None else "TIMED OUT"),
            *[f"lost: {x}" for x in self.lost[:10]],
            *[f"twice: {x}" for x in self.twice[:10]],
            *[f"resent: {x}" for x in self.resent_after_kill[:10]],
            *[f"not answered: {x}" for x in self.not_answered[:5]],
            f"timeline: {self.timeline}",
            f"logs: {self.log_dir}",
        ])


def _deliver(client: Http, secret: str, sms: PlannedSms, result: SmsDrillResult,
             lock: threading.Lock, give_up_s: float = 60.0) -> None:
    """GET the webhook as Kannel does; retry the same message id until it answers 200."""
    params = {"secret": secret, "id": sms.message_id, "from": sms.sender, "to": SHORT_CODE,
              "text": sms.text, "charset": "utf-8", "coding": "0"}
    path = "/sms/inbound/kannel?" + urllib.parse.urlencode(params)
    deadline = time.monotonic() + give_up_s
    tries = 0
    while True:
        tries += 1
        try:
            status, _ = client.request("GET", path, "-")
        except (OSError, http.client.HTTPException):
            status = 0
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    with lock:
        result.retries += tries - 1
        if status == 200:
            result.answered += 1
        else:
            result.not_answered.append(f"{sms.message_id}: {status}")


def _settled() -> bool:
    from sms.records import InboundMessage, OutboundMessage

    return (InboundMessage.objects(state="stored").count() == 0
            and OutboundMessage.objects(state="queued").count() == 0)


def _check(result: SmsDrillResult, plan: list[PlannedSms], sendsms: SendSms,
           killed_jobs: list[tuple[float, str]]) -> None:
    """Exactly one outcome per message, counted from the store and the carrier's side."""
    from gateway.delivery.outbound_sms import send_job_id
    from gateway.records.reports import Report
    from sms.records import InboundMessage, OutboundMessage

    stored = {m.message_id: m for m in InboundMessage.objects(
        message_id__in=[p.message_id for p in plan])}
    reports = Counter(r["client_id"] for r in Report._get_collection().find(
        {"source": "sms"}, {"client_id": 1}))
    replies: dict[Any, list[Any]] = {}
    for out in OutboundMessage.objects(inbound_id__ne=None).only("inbound_id", "purpose",
                                                                  "state", "ref"):
        replies.setdefault(out.inbound_id, []).append(out)
    result.replies = sum(len(v) for v in replies.values())
    result.sendsms_calls = sum(sendsms.calls.values())
    for p in plan:
        msg = stored.get(p.message_id)
        if msg is None:
            result.lost.append(f"{p.message_id}: answered but not stored")
            continue
        result.outcomes[msg.state] += 1
        filed = reports.get(f"sms-kannel-{p.message_id}"[:64], 0)
        result.reports_filed += filed
        own = replies.get(msg.id, [])
        if msg.state == "stored":
            result.lost.append(f"{p.message_id}: never handled")
        if filed > 1:
            result.twice.append(f"{p.message_id}: {filed} reports")
        if msg.state == "rate_limited" and filed:
            result.twice.append(f"{p.message_id}: filed as a report and refused by the limit")
        if msg.state == "handled" and msg.kind in ("report", "free_text") and not filed:
            result.lost.append(f"{p.message_id}: handled, no report filed")
        if msg.state == "handled" and not own:
            result.lost.append(f"{p.message_id}: handled, no reply recorded")
        for out in own:
            if out.state == "queued":
                result.lost.append(f"{p.message_id}: reply {out.ref} never sent")
    sends = {send_job_id(ref) for ref in sendsms.calls}
    result.kills_mid_send = sum(job in sends for _, job in killed_jobs)
    for ref, calls in sendsms.calls.items():
        if calls == 1:
            continue
        cut = _cut_mid_send(sendsms.times[ref], ref, killed_jobs)
        if cut is not None:
            result.resent_after_kill.append(cut)
        else:
            result.twice.append(f"SMS {ref} handed to the carrier {calls} times")


def _cut_mid_send(times: list[float], ref: str,
                  killed_jobs: list[tuple[float, str]]) -> str | None:
    """Why a message handed over twice was sent at least once, not twice: the worker
    running its send job was killed after the carrier's first call, and the second
    call came once the claim had expired. None when that is not what happened."""
    from gateway.delivery.outbound_sms import SEND_CLAIM_S, send_job_id

    if len(times) != 2:
        return None
    first, second = times
    for killed_at, job in killed_jobs:
        if (job == send_job_id(ref) and first <= killed_at
                and second - first >= SEND_CLAIM_S - 1.0):
            return (f"SMS {ref}: its sender killed {1000 * (killed_at - first):.0f} ms after "
                    f"the carrier took it; sent again {second - first:.0f} s later")
    return None


def run_sms_drill(stack_dir: Path, messages: int = 200, rate_per_s: float = 10.0,
                  kills: int = 6, redis_restart: bool = True, seed: int | None = None, *,
                  new_numbers: int = 5, fast_workers: int = 2, route_workers: int = 1,
                  redis_down_s: float = 5.0, settle_timeout_s: float = 120.0, sweep_s: int = 2,
                  progress: Callable[[str], None] | None = None) -> SmsDrillResult:
    """Run the SMS leg against a stack of its own under `stack_dir` (see the docstring)."""
    seed = random.SystemRandom().randrange(1 << 31) if seed is None else seed
    rng = random.Random(seed)
    say = progress or (lambda _msg: None)
    result = SmsDrillResult(seed=seed, planned=messages, log_dir=str(stack_dir / "logs"))
    faults_seen = DrillResult(seed=seed, reports_planned=0, rate_per_s=rate_per_s)
    secret = secrets.token_urlsafe(16)
    sendsms = SendSms()
    env = {"SAFEGRID_SWEEP_AFTER_S": str(sweep_s), "SAFEGRID_SWEEP_INTERVAL_S": str(sweep_s),
           "SAFEGRID_SMS_ENABLED": "true", "SAFEGRID_SMS_WEBHOOK_SECRET": secret,
           "SAFEGRID_KANNEL_SENDSMS_URL": sendsms.url, "SAFEGRID_KANNEL_PASSWORD": "drill",
           "SAFEGRID_SMS_RATE_PER_S": "200"}
    say(f"SMS leg: starting the stack under {stack_dir} (seed {seed})")
    running = start_stack(stack_dir, workers=route_workers, fast_workers=fast_workers,
                          extra_env=env)
    try:
        wait_for_workers(running)
        from grid.documents import GridCell

        cells = sorted(c.code for c in GridCell.objects.only("code"))
        plan = plan_sms(messages, rng, cells, f"sms{seed}", new_numbers)
        load_s = messages / rate_per_s
        events = [(rng.uniform(0.05, 0.95) * load_s, "kill") for _ in range(kills)]
        if redis_restart:
            events.append((rng.uniform(0.35, 0.6) * load_s, "redis"))
        events.sort()
        t0 = time.monotonic()
        chaos = Chaos(running, rng, faults_seen, t0)
        supervisor = threading.Thread(target=chaos.supervise, daemon=True)
        supervisor.start()

        def faults() -> None:
            for at, what in events:
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                if what == "kill":
                    chaos.kill_worker()
                else:
                    threading.Thread(target=chaos.crash_redis, args=(redis_down_s, False),
                                     daemon=True).start()

        chaos_thread = threading.Thread(target=faults, daemon=True)
        chaos_thread.start()
        say(f"SMS leg: {messages} SMS at {rate_per_s:g}/s with {kills} kills"
            f"{' and a Redis crash' if redis_restart else ''}")
        client, lock = Http(running.port), threading.Lock()
        senders = []
        burst = new_numbers * 3
        for i, sms in enumerate(plan):
            # The new numbers' first messages all at once; the rest at the steady rate.
            time.sleep(max(0.0, t0 + max(0, i - burst) / rate_per_s - time.monotonic()))
            thread = threading.Thread(target=_deliver, args=(client, secret, sms, result, lock),
                                      daemon=True)
            thread.start()
            senders.append(thread)
        for thread in senders:
            thread.join(120)
        chaos_thread.join()
        while chaos.redis_down.is_set():
            time.sleep(0.1)
        done = time.monotonic()
        say("SMS leg: waiting for every SMS to be handled and every reply sent")
        from gateway.delivery.outbound_sms import sweep_outbound
        from gateway.intake.inbound_sms import sweep_inbound

        while time.monotonic() - done < settle_timeout_s:
            # Then the sweepers once more, here: anything they find was not settled.
            if _settled() and not (sweep_inbound(0) + sweep_outbound(0)):
                result.settled_s = time.monotonic() - done
                break
            time.sleep(1.0)
        chaos.stop.set()
        supervisor.join(5)
        result.kills = faults_seen.kills
        result.redis_restarts = faults_seen.redis_restarts
        result.timeline = "; ".join(f"{f.at:.1f}s {f.what}{f.detail}" for f in faults_seen.faults)
        _check(result, plan, sendsms, chaos.killed_jobs)
    finally:
        spawned = list(running.stack.services)
        running.stack.stop()
        reap_orphans(spawned)
        sendsms.close()
    return result
