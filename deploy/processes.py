"""Start and stop SafeGrid's real parts as child processes.

Used by `make run` (deploy/run_local.py), the test fixtures and the
benchmarks, so all three start Redis, SecantusDB, gunicorn and RQ workers the
same way. Each server gets a free loopback port unless one is given.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

ROOT = Path(__file__).resolve().parent.parent
# The path without its query string: Kannel's webhook URLs carry phone numbers.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
BIN = Path(sys.executable).parent
# Open connections one gevent worker holds at most (slow ones included).
WORKER_CONNECTIONS = 1000


# Stopped last, after everything that writes to them; the carrier's side just before.
STORE_NAMES = ("redis-", "sentinel-", "secantus-")
CARRIER_NAMES = ("bearerbox-", "smsbox-", "fakesmsc-")


def _waves(services: Sequence[Service]) -> list[list[Service]]:
    """SafeGrid's processes, the carrier's side, the stores (each wave in reverse start order)."""
    last_first = list(reversed(services))
    stores = [s for s in last_first if s.name.startswith(STORE_NAMES)]
    carrier = [s for s in last_first if s.name.startswith(CARRIER_NAMES)]
    own = [s for s in last_first if s not in stores and s not in carrier]
    return [own, carrier, stores]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
                  name: str = "server") -> None:
    """Block until something accepts connections on `port`, or fail clearly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} before listening "
                               f"on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout:.0f} s")


def find_program(name: str, *extra_dirs: str) -> str:
    """Path of an installed program (the venv's bin first), or a clear error."""
    for directory in (str(BIN), *extra_dirs):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (see README: make run installs it)")
    return found


@dataclass
class Service:
    """One child process we started and must stop."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int | None = None
    log_path: Path | None = None

    def stop(self, timeout: float = 10.0, *, signalled: bool = False) -> None:
        """SIGTERM (unless `signalled` already: a second one makes an RQ worker drop the job
        it is on), then SIGKILL after `timeout` seconds."""
        if self.proc.poll() is not None:
            return
        if not signalled:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        """`kill -9`: what a crash or the OOM killer does."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """The processes of one running SafeGrid, stopped in reverse order."""

    log_dir: Path
    services: list[Service] = field(default_factory=list)

    def _spawn(self, name: str, argv: Sequence[str], *, port: int | None = None,
               env: Mapping[str, str] | None = None, wait: float = 30.0) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        proc = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        log.close()
        service = Service(name, proc, port, log_path)
        self.services.append(service)
        if port is not None:
            try:
                wait_for_port(port, wait, proc, name)
            except Exception as exc:
                raise RuntimeError(f"{exc}\n--- {name} log ---\n{service.log_tail()}") from exc
        return service

    def redis(self, port: int | None = None, data_dir: Path | None = None,
              replica_of: int | None = None, password: str | None = None) -> Service:
        """A real redis-server: AOF with fsync every second, never evicting (noeviction);
        a replica of the Redis on loopback port `replica_of` if given."""
        port = port or free_port()
        argv = [find_program("redis-server", "/usr/bin", "/usr/sbin"),
                "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--maxmemory-policy", "noeviction"]
        if password is not None:
            argv += ["--requirepass", password, "--masterauth", password]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        if data_dir is None:
            # A throwaway test instance: nothing to keep. A replica's sync still writes an
            # RDB file (a demoted master's too): into the log folder, not the checkout.
            self.log_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--appendonly", "no", "--dir", str(self.log_dir)]
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "everysec"]
        return self._spawn(f"redis-{port}", argv, port=port)

    def sentinel(self, master_port: int, master_name: str = "safegrid", quorum: int = 2,
                 port: int | None = None, down_after_ms: int = 2000) -> Service:
        """A real Redis Sentinel (`redis-server CONF --sentinel`) watching the master on
        loopback port `master_port` under `master_name`; deploy/compose/sentinel.conf is
        the production one. Sentinel rewrites its file, so each gets its own copy."""
        port = port or free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        conf = self.log_dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.log_dir}\n"
            f"sentinel monitor {master_name} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
            f"sentinel failover-timeout {master_name} 10000\n"
            f"sentinel parallel-syncs {master_name} 1\n")
        argv = [find_program("redis-server", "/usr/bin", "/usr/sbin"), str(conf), "--sentinel"]
        return self._spawn(f"sentinel-{port}", argv, port=port)

    def secantus(self, port: int | None = None, storage: str = ":memory:",
                 cache_size: str | None = None) -> Service:
        """SecantusDB, the MongoDB-wire server over WiredTiger, as its own process
        (`cache_size` like "4G": WiredTiger's cache, 1G by default)."""
        port = port or free_port()
        # --standalone: drivers see a standalone server, so pymongo sends no retryable-write
        # ids. SecantusDB keeps every such id for 30 minutes and scans them on each write,
        # which made writes slower the longer it ran (route capacity +25-35 % without;
        # docs/performance.md). SafeGrid's writes are idempotent by design (unique keys,
        # upserts, client ids), so the driver's single retry is not needed against it.
        argv = [find_program("secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
                "--storage-path", storage, "--log-level", "WARNING", "--standalone",
                *(["--cache-size", cache_size] if cache_size else [])]
        return self._spawn(f"secantus-{port}", argv, port=port, wait=60.0)

    def gunicorn(self, env: Mapping[str, str], port: int | None = None, workers: int = 2,
                 threads: int = 4, worker_class: str = "gevent",
                 app: str = "wsgi:app") -> Service:
        """gunicorn on loopback serving `app` (SafeGrid; a benchmark may give its own WSGI app).

        The gevent worker by default: a connection waiting for a slow client's body is a
        parked greenlet, not one of a few threads, so slow clients cannot hold the API
        (`threads` counts only for worker_class="gthread")."""
        port = port or free_port()
        argv = [find_program("gunicorn"), app, "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--worker-class", worker_class,
                *(["--threads", str(threads)] if worker_class == "gthread" else
                  ["--worker-connections", str(WORKER_CONNECTIONS)]),
                "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT,
                "--logger-class", "deploy.gunicorn_logging.RouteLogger",
                "--log-config-json", str(LOG_CONFIG),  # JSON lines (gateway/jsonlog.py)
                # gunicorn 27's control socket defaults to one path per user: every gunicorn
                # started here would share ~/.gunicorn/gunicorn.ctl. Nothing here uses it.
                "--no-control-socket",
                "--graceful-timeout", "5"]
        return self._spawn(f"gunicorn-{port}", argv, port=port, env=env, wait=60.0)

    def worker(self, env: Mapping[str, str], name: str = "worker",
               queue_names: Sequence[str] = (), lane: str | None = None) -> Service:
        """`safegrid worker`: on a lane (`fast`, `route`), on the queues named, or on all."""
        argv = [find_program("safegrid"), "worker", *(["--lane", lane] if lane else []),
                *queue_names]
        return self._spawn(name, argv, env=env)

    def lanes(self, env: Mapping[str, str], route_workers: int = 2,
              prefix: str = "worker") -> list[Service]:
        """One fast-lane worker (SMS, critical, sweeper) and `route_workers` routing workers.

        How `make run`, the end-to-end tests and the benchmarks run SafeGrid's
        workers, as deploy/systemd does: see LANES in gateway/delivery/queues.py.
        """
        fast = self.worker(env, name=f"{prefix}-fast", lane="fast")
        return [fast, *(self.worker(env, name=f"{prefix}-route-{i + 1}", lane="route")
                        for i in range(route_workers))]

    def cron(self, env: Mapping[str, str]) -> Service:
        return self._spawn("cron", [find_program("safegrid"), "cron"], env=env)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop in three waves, each all at once (every RQ worker's warm shutdown finishes
        its job in parallel with the others'): SafeGrid's own processes, then the carrier's
        side (Kannel, fakesmsc: a worker's last SMS still reaches it), then the stores."""
        for wave in _waves(self.services):
            for service in wave:
                if service.proc.poll() is None:
                    service.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for service in wave:
                service.stop(max(0.1, deadline - time.monotonic()), signalled=True)
        self.services.clear()

    def kannel(self, inbound_url: str, secret: str, *, default_sender: str = "10690000",
               username: str = "safegrid", password: str | None = None,
               wait: float = 30.0) -> KannelPorts:
        """Real bearerbox + smsbox (Debian `kannel`) on loopback, MOs going to `inbound_url`.

        The config is deploy/kannel/test.conf.template filled in and written to
        the log dir; its sms-service get-url is the production template. Returns
        once smsbox is connected to bearerbox, so sendsms works at once. The
        fake SMSC port waits for `fakesmsc()`.
        """
        from sms.providers.kannel import sms_service_get_url

        ports: set[int] = set()
        while len(ports) < 4:  # free_port may hand out the same port twice
            ports.add(free_port())
        admin_port, smsbox_port, smsc_port, sendsms_port = sorted(ports)
        values: dict[str, object] = {
            "admin_port": admin_port, "smsbox_port": smsbox_port, "smsc_port": smsc_port,
            "sendsms_port": sendsms_port, "admin_password": secrets.token_hex(12),
            "sendsms_username": username, "sendsms_password": password or secrets.token_hex(12),
            "default_sender": default_sender, "get_url": sms_service_get_url(inbound_url, secret),
        }
        for key, value in values.items():
            if any(c in str(value) for c in '"\r\n'):
                raise ValueError(f"{key} must not contain quotes or line breaks")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.log_dir / f"kannel-{admin_port}.conf"
        config_path.write_text(KANNEL_TEST_TEMPLATE.read_text().format(**values))
        kannel = KannelPorts(
            admin_port=admin_port, smsbox_port=smsbox_port, smsc_port=smsc_port,
            sendsms_port=sendsms_port,
            sendsms_url=f"http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms",
            username=username, password=str(values["sendsms_password"]),
            admin_password=str(values["admin_password"]), default_sender=default_sender,
            config_path=config_path,
        )
        # Foreground by default (no --daemonize); -v 1: info to stderr, our log file.
        bearerbox = self._spawn(
            f"bearerbox-{admin_port}",
            [find_program("bearerbox", "/usr/sbin"), "-v", "1", str(config_path)],
            port=admin_port, wait=wait,
        )
        # The admin port opens first; the box port and the SMSC socket after it.
        # The SMSC port is not probed: a probe would look like a fakesmsc client.
        try:
            wait_for_port(smsbox_port, wait, bearerbox.proc, "bearerbox")
            _wait_until(lambda: f"FAKE:{smsc_port}" in kannel.status(), wait, bearerbox,
                        "bearerbox did not open its fake SMSC port")
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- bearerbox log ---\n{bearerbox.log_tail()}") from exc
        smsbox = self._spawn(
            f"smsbox-{sendsms_port}",
            [find_program("smsbox", "/usr/sbin"), "-v", "1", str(config_path)],
            port=sendsms_port, wait=wait,
        )
        _wait_until(lambda: "smsbox:" in kannel.status(), wait, smsbox,
                    "smsbox did not connect to bearerbox")
        return kannel

    def fakesmsc(self, kannel: KannelPorts, *, wait: float = 15.0) -> FakeSmsc:
        """Kannel's fakesmsc as the carrier, in interactive mode: MOs via stdin, MTs in its log.

        fakesmsc logs each MT it receives ("Got message N: <line>") to stderr,
        not stdout; both go to the Stack log file, which `FakeSmsc` reads.
        """
        name = f"fakesmsc-{kannel.smsc_port}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        # -i 0: no pause between MOs; -v 0: debug, which is where MTs are logged.
        proc = subprocess.Popen(
            [find_program("fakesmsc", "/usr/lib/kannel/test"), "-H", "127.0.0.1",
             "-r", str(kannel.smsc_port), "-i", "0", "-v", "0"],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True,
        )
        log.close()
        service = _InteractiveService(name, proc, None, log_path)
        self.services.append(service)
        _wait_until(lambda: f"FAKE:{kannel.smsc_port} (online" in kannel.status(), wait,
                    service, "fakesmsc did not connect to bearerbox")
        return FakeSmsc(service, kannel)


def app_env(mongodb_uri: str, redis_url: str, data_keys: str, **extra: str) -> dict[str, str]:
    """Environment for SafeGrid processes pointed at these stores, with these data keys."""
    return {"MONGODB_URI": mongodb_uri, "REDIS_URL": redis_url,
            "SAFEGRID_DATA_KEYS": data_keys, **extra}


# --- Kannel with fakesmsc (Stack.kannel, Stack.fakesmsc) ---

LOG_CONFIG = ROOT / "deploy" / "logging.json"
KANNEL_TEST_TEMPLATE = ROOT / "deploy" / "kannel" / "test.conf.template"


def _wait_until(predicate: Callable[[], bool], timeout: float, service: Service,
                what: str) -> None:
    """Poll `predicate` until true; fail with `what` and the service's log if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            break
        try:
            if predicate():
                return
        except OSError:
            pass  # the admin port may refuse while Kannel starts
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout:.0f} s (exit code {service.proc.poll()})\n"
                       f"--- {service.name} log ---\n{service.log_tail()}")


@dataclass(frozen=True)
class KannelPorts:
    """Where a test Kannel listens, and how to use its sendsms interface."""

    admin_port: int
    smsbox_port: int
    smsc_port: int
    sendsms_port: int
    sendsms_url: str
    username: str
    password: str
    admin_password: str
    default_sender: str
    config_path: Path

    def status(self, timeout: float = 2.0) -> str:
        """bearerbox's status.txt (boxes, SMSC links, queues)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request("GET", f"/status.txt?password={self.admin_password}")
            return conn.getresponse().read().decode("utf-8", "replace")
        finally:
            conn.close()


class _InteractiveService(Service):
    """A child fed through a stdin pipe, which is closed when it is stopped."""

    def stop(self, timeout: float = 10.0, *, signalled: bool = False) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        super().stop(timeout, signalled=signalled)

    def kill(self) -> None:
        super().kill()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()


_FAKESMSC_SENT = re.compile(rb"fakesmsc: sent message (\d+)\s*$", re.MULTILINE)
_FAKESMSC_GOT = re.compile(rb"Got message (\d+): <(.*)>\s*$", re.MULTILINE)


@dataclass
class FakeSmsc:
    """A running fakesmsc: `send_mo` types a line on its stdin, `read_mt` reads its log.

    MO line: `sender receiver text <text>` or `sender receiver ucs2 <URL-encoded
    UTF-16BE>`. MT line as bearerbox sends it: `sender receiver text <text>`,
    `... ucs-2 <URL-encoded UTF-16BE>` (note the hyphen), `... data <URL-encoded
    8-bit>` or `... udh <udh> data <data>`.
    """

    service: Service
    kannel: KannelPorts
    sent: int = 0
    mt_seen: int = 0

    # fakesmsc reads stdin with fgets(buf, 256): a longer line becomes two MOs.
    MAX_LINE = 255

    def send_mo(self, sender: str, receiver: str, text: str, ucs2: bool = False,
                timeout: float = 10.0) -> None:
        """One MO from `sender` to `receiver`; returns once fakesmsc has sent it to bearerbox."""
        for number in (sender, receiver):
            if not number or any(c.isspace() for c in number):
                raise ValueError("sender and receiver must be non-empty and without spaces")
        if ucs2:
            line = f"{sender} {receiver} ucs2 {quote_from_bytes(text.encode('utf-16-be'), safe='')}"
        elif "\n" in text or "\r" in text:
            raise ValueError("a 'text' MO is one line; send line breaks as ucs2")
        else:
            line = f"{sender} {receiver} text {text}"
        data = (line + "\n").encode()
        if len(data) > self.MAX_LINE:
            raise ValueError(f"fakesmsc reads at most {self.MAX_LINE} bytes a line, "
                             f"this MO needs {len(data)}")
        stdin = self.service.proc.stdin
        assert stdin is not None
        stdin.write(data)
        stdin.flush()
        self.sent += 1
        # fakesmsc select()s on stdin but reads it through stdio: a second line
        # written before it took the first would sit in its buffer unseen. So
        # wait for "sent message N" before anyone writes the next one.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(int(n) >= self.sent for n in _FAKESMSC_SENT.findall(self._log())):
                return
            if self.service.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"fakesmsc did not send MO {self.sent} within {timeout:.0f} s\n"
                           f"--- {self.service.name} log ---\n{self.service.log_tail()}")

    def read_mt(self, timeout: float = 10.0, count: int = 1) -> list[tuple[str, str, str, str]]:
        """MTs received since the last call, as (sender, receiver, kind, text).

        Waits until `count` new ones arrived or `timeout` passed (then returns
        what there is). `text` is decoded: UCS-2 from UTF-16BE, 8-bit data as
        UTF-8; for `udh` it is `udh=<hex> data=<hex>`.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [(int(n), line) for n, line in _FAKESMSC_GOT.findall(self._log())
                     if int(n) > self.mt_seen]
            if len(found) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if found:
            self.mt_seen = max(n for n, _ in found)
        return [_decode_mt(line) for _, line in sorted(found)]

    def _log(self) -> bytes:
        assert self.service.log_path is not None
        return self.service.log_path.read_bytes()


def _url_bytes(payload: str) -> bytes:
    """Kannel's URL encoding (space as '+') back to bytes."""
    return unquote_to_bytes(payload.replace("+", " "))


def _decode_mt(line: bytes) -> tuple[str, str, str, str]:
    sender, receiver, kind, payload = line.decode("utf-8", "replace").split(" ", 3)
    if kind == "ucs-2":
        return sender, receiver, kind, _url_bytes(payload).decode("utf-16-be", "replace")
    if kind == "data":
        return sender, receiver, kind, _url_bytes(payload).decode("utf-8", "replace")
    if kind == "udh":
        udh, _, data = payload.partition(" data ")
        return sender, receiver, kind, f"udh={_url_bytes(udh).hex()} data={_url_bytes(data).hex()}"
    return sender, receiver, kind, payload
