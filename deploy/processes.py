"""Start and stop SafeGrid's real parts as child processes.

Used by `make run` (deploy/run_local.py), the test fixtures and the
benchmarks, so all three start Redis, SecantusDB, gunicorn and RQ workers the
same way. Each server gets a free loopback port unless one is given.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


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

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
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

    def redis(self, port: int | None = None, data_dir: Path | None = None) -> Service:
        """A real redis-server: AOF with fsync every second, never evicting (noeviction)."""
        port = port or free_port()
        argv = [find_program("redis-server", "/usr/bin", "/usr/sbin"),
                "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--maxmemory-policy", "noeviction"]
        if data_dir is None:
            argv += ["--appendonly", "no"]  # a throwaway test instance: nothing to keep
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "everysec"]
        return self._spawn(f"redis-{port}", argv, port=port)

    def secantus(self, port: int | None = None, storage: str = ":memory:") -> Service:
        """SecantusDB, the MongoDB-wire server over WiredTiger, as its own process."""
        port = port or free_port()
        argv = [find_program("secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
                "--storage-path", storage, "--log-level", "WARNING"]
        return self._spawn(f"secantus-{port}", argv, port=port, wait=60.0)

    def gunicorn(self, env: Mapping[str, str], port: int | None = None, workers: int = 2,
                 threads: int = 4) -> Service:
        port = port or free_port()
        argv = [find_program("gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--threads", str(threads),
                "--access-logfile", "-", "--graceful-timeout", "5"]
        return self._spawn(f"gunicorn-{port}", argv, port=port, env=env, wait=60.0)

    def worker(self, env: Mapping[str, str], name: str = "worker",
               queue_names: Sequence[str] = ()) -> Service:
        return self._spawn(name, [find_program("safegrid"), "worker", *queue_names], env=env)

    def cron(self, env: Mapping[str, str]) -> Service:
        return self._spawn("cron", [find_program("safegrid"), "cron"], env=env)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()


def app_env(mongodb_uri: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for SafeGrid processes pointed at these stores."""
    return {"MONGODB_URI": mongodb_uri, "REDIS_URL": redis_url, **extra}
