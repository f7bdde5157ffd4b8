"""deploy/compose/: the production topology as containers, checked two ways.

`docker-compose config -q` (Debian's docker-compose, installed by bootstrap --dev; no
Docker daemon needed) validates the file against the Compose schema and interpolates
every variable from env.example. Then the file is read as YAML and the topology checked:
three MongoDB members with majority writes, Redis with AOF, a replica and three sentinels
reached through REDIS_SENTINELS, Kannel's two boxes, nginx with TLS, a worker pool per
lane, exactly one cron, and only settings SafeGrid knows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from gateway.delivery import queues
from gateway.settings import Settings, from_env, sentinel_addresses

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose"
SAFEGRID_SERVICES = {"api", "worker-fast", "worker-route", "cron"}
# SAFEGRID_* variables deploy/gunicorn.conf.py reads (not Settings fields).
GUNICORN_ENV = set(re.findall(r'environ\.get\("(SAFEGRID_[A-Z_]+)"',
                              (ROOT / "deploy" / "gunicorn.conf.py").read_text()))


def docker_compose() -> str:
    program = shutil.which("docker-compose")
    assert program, "docker-compose is not installed: run deploy/bootstrap.sh --dev"
    return program


def compose_config(*args: str, env_file: Path | None = COMPOSE / "env.example"
                   ) -> subprocess.CompletedProcess[str]:
    argv = [docker_compose(), *(["--env-file", str(env_file)] if env_file else []),
            "-f", str(COMPOSE / "compose.yml"), "config", *args]
    # An empty environment: only env.example's values may fill the file.
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"}, check=False)


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The compose file as docker-compose resolves it (anchors merged, variables filled)."""
    done = compose_config()
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_docker_compose_accepts_the_file():
    done = compose_config("-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_docker_compose_refuses_it_without_the_secrets():
    done = compose_config("-q", env_file=None)
    assert done.returncode != 0
    assert "set " in done.stderr  # `${VAR:?set VAR}`: the message names what is missing


def test_docker_compose_catches_a_broken_file(tmp_path):
    broken = (COMPOSE / "compose.yml").read_text().replace(
        "depends_on: [redis]", "depends_on: [redis-master]")
    (tmp_path / "compose.yml").write_text(broken)
    done = subprocess.run([docker_compose(), "--env-file", str(COMPOSE / "env.example"),
                           "-f", str(tmp_path / "compose.yml"), "config", "-q"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "redis-master" in done.stderr


def test_every_service_runs_something_and_depends_only_on_services_there(resolved):
    services = resolved["services"]
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        assert service.get("restart") in {"always", "no"}, name
        for target in service.get("depends_on", {}):
            assert target in services, (name, target)
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.split(":", 1)[1] in services, name


def test_every_mounted_file_is_in_the_checkout():
    raw = yaml.safe_load((COMPOSE / "compose.yml").read_text())
    for name, service in raw["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (COMPOSE / source).is_file(), (name, source)
        build = service.get("build")
        if build:
            dockerfile = (COMPOSE / build["context"] / build["dockerfile"]).resolve()
            assert dockerfile.is_file(), (name, dockerfile)


def test_mongodb_is_a_three_member_replica_set_written_by_majority(resolved):
    services = resolved["services"]
    members = [n for n, s in services.items() if s.get("command", [None])[0] == "mongod"]
    assert sorted(members) == ["mongo1", "mongo2", "mongo3"]
    for name in members:
        command = services[name]["command"]
        assert command[command.index("--replSet") + 1] == "rs0"
        assert "--keyFile" in command
    script = (COMPOSE / "mongo-init.js").read_text()
    for name in members:
        assert f'host: "{name}:27017"' in script
    for name in SAFEGRID_SERVICES:
        uri = urlsplit(services[name]["environment"]["MONGODB_URI"])
        options = parse_qs(uri.query)
        assert options["replicaSet"] == ["rs0"], name
        assert options["w"] == ["majority"], name
        hosts = {h.rsplit(":", 1)[0] for h in uri.netloc.split("@", 1)[1].split(",")}
        assert hosts == set(members), name


def test_redis_keeps_an_aof_and_is_reached_through_three_sentinels(resolved):
    services = resolved["services"]
    conf = (COMPOSE / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^appendfsync everysec$", conf, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    replica = services["redis-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1:][:2] == ["redis", "6379"]
    sentinels = sorted(n for n, s in services.items() if "sentinel.sh" in str(s.get("command")))
    assert sentinels == ["sentinel1", "sentinel2", "sentinel3"]
    script = (COMPOSE / "sentinel.sh").read_text()
    assert re.search(r"sentinel monitor safegrid \$\{REDIS_MASTER_HOST:-redis\} "
                     r"\$\{REDIS_MASTER_PORT:-6379\} 2$", script, re.M)  # quorum 2 of 3
    for name in SAFEGRID_SERVICES:
        env = services[name]["environment"]
        assert [h for h, _ in sentinel_addresses(env["REDIS_SENTINELS"])] == sentinels, name
        assert env["SAFEGRID_REDIS_MASTER"] == "safegrid"


def test_sentinel_script_is_valid_shell():
    done = subprocess.run(["sh", "-n", str(COMPOSE / "sentinel.sh")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(["sh", "-n", str(COMPOSE / "kannel.sh")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_worker_pool_per_lane_and_exactly_one_cron(resolved):
    services = resolved["services"]
    lanes = {s["command"][s["command"].index("--lane") + 1]: s
             for s in services.values() if "--lane" in s.get("command", [])}
    assert set(lanes) == set(queues.LANES)
    for service in lanes.values():
        assert service["deploy"]["replicas"] >= 2  # one may die or be upgraded at a time
    crons = [n for n, s in services.items() if s.get("command") == ["safegrid", "cron"]]
    assert crons == ["cron"]
    assert services["cron"]["deploy"]["replicas"] == 1
    assert services["api"]["command"][:3] == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]


def test_every_safegrid_setting_is_one_safegrid_knows(resolved):
    known = {f"SAFEGRID_{name.upper()}" for name in vars(Settings())} | GUNICORN_ENV
    for name in SAFEGRID_SERVICES:
        env = {k: str(v) for k, v in resolved["services"][name]["environment"].items()}
        unknown = {k for k in env if k.startswith("SAFEGRID_")} - known
        assert not unknown, (name, unknown)
        settings = from_env(env)  # parses: numbers are numbers, the sentinel list is a list
        assert settings.sms_enabled
        assert settings.proxy_hops == 1  # behind nginx
        assert settings.kannel_sendsms_url.startswith("http://kannel-bearerbox:13013/")


def test_kannel_boxes_share_one_network_namespace_and_reach_the_carrier(resolved):
    services = resolved["services"]
    assert services["kannel-smsbox"]["network_mode"] == "service:kannel-bearerbox"
    assert "carrier" in services["kannel-bearerbox"]["networks"]
    # The stores and SafeGrid have no route out.
    assert resolved["networks"]["backend"]["internal"] is True
    for name in ("mongo1", "redis", "sentinel1", *SAFEGRID_SERVICES):
        assert set(services[name]["networks"]) == {"backend"}, name
    subnet = resolved["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    template = (COMPOSE / "kannel.conf.template").read_text()
    prefix = subnet.rsplit(".", 1)[0]
    assert f"{prefix}.*" in template  # sendsms allows the backend network, nothing wider


def test_nginx_terminates_tls_in_front_of_the_api(resolved):
    nginx = resolved["services"]["nginx"]
    assert any(str(p.get("target") if isinstance(p, dict) else p).endswith("443")
               for p in nginx["ports"])
    conf = (COMPOSE / "nginx.conf").read_text()
    assert "server api:8000;" in conf
    assert re.search(r"listen 443 ssl", conf)
    mounts = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in nginx["volumes"]]
    assert "/etc/ssl/safegrid" in mounts


def test_sentinel_script_starts_a_sentinel_that_sees_the_master(tmp_path):
    """deploy/compose/sentinel.sh run for real: its configuration (passwords, quorum,
    hostnames) is one a redis-server in sentinel mode accepts and monitors with."""
    import redis as redis_lib

    from deploy.processes import Stack, free_port

    stack = Stack(tmp_path / "logs")
    try:
        master = stack.redis(password="s3cret")
        port = free_port()
        env = {"SENTINEL_CONF": str(tmp_path / "sentinel.conf"), "SENTINEL_PORT": str(port),
               "SENTINEL_ANNOUNCE": "127.0.0.1", "REDIS_PASSWORD": "s3cret",
               "REDIS_MASTER_HOST": "127.0.0.1", "REDIS_MASTER_PORT": str(master.port)}
        stack._spawn("sentinel", ["sh", str(COMPOSE / "sentinel.sh")], port=port, env=env)
        sentinel = redis_lib.Redis(port=port, password="s3cret", socket_timeout=2,
                                   decode_responses=True)
        assert sentinel.sentinel_get_master_addr_by_name("safegrid") == ("127.0.0.1",
                                                                         master.port)
        # Authenticated to the master: it is seen up, not subjectively down.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state = sentinel.sentinel_master("safegrid")
            if state.get("role-reported") == "master" and state["quorum"] == 2:
                break
            time.sleep(0.2)
        assert state["flags"] == "master", state
        assert state["quorum"] == 2
        with pytest.raises(redis_lib.AuthenticationError):
            redis_lib.Redis(port=port, socket_timeout=2).ping()
    finally:
        stack.stop()


def test_each_container_is_given_every_variable_its_script_fills_in(resolved):
    """envsubst and sh fill a missing variable with nothing, silently: check beforehand."""
    services = resolved["services"]
    template = (COMPOSE / "kannel.conf.template").read_text()
    wanted = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", template))
    assert wanted
    for name in ("kannel-bearerbox", "kannel-smsbox"):
        assert wanted <= set(services[name]["environment"]), (name, wanted)
    script = (COMPOSE / "sentinel.sh").read_text()
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", script))  # no :- default
    for name in ("sentinel1", "sentinel2", "sentinel3"):
        assert required <= set(services[name]["environment"]), (name, required)
    announced = {services[n]["environment"]["SENTINEL_ANNOUNCE"] for n in
                 ("sentinel1", "sentinel2", "sentinel3")}
    assert announced == {"sentinel1", "sentinel2", "sentinel3"}  # each its own name
    for name in SAFEGRID_SERVICES:
        settings = from_env({k: str(v) for k, v in services[name]["environment"].items()})
        assert settings.data_keys, name
        assert settings.sms_webhook_secret == services["kannel-bearerbox"]["environment"][
            "SAFEGRID_SMS_WEBHOOK_SECRET"], name
        assert settings.kannel_password == services["kannel-bearerbox"]["environment"][
            "KANNEL_SENDSMS_PASSWORD"], name


def test_the_files_the_image_copies_build_safegrid(tmp_path):
    """No Docker daemon here to build safegrid.Dockerfile, so its COPY lines are followed
    by hand: the files they name must build SafeGrid's wheel, catalogs and boundary
    included, and hold what the containers' commands run (wsgi.py, deploy/)."""
    import sys
    import zipfile

    context = tmp_path / "context"
    context.mkdir()
    for line in (COMPOSE / "safegrid.Dockerfile").read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, _ = line.split()[1:]
        for source in sources:
            path = ROOT / source
            assert path.exists(), source
            if path.is_dir():
                shutil.copytree(path, context / source,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, context / source)
    assert (context / "wsgi.py").is_file()
    assert (context / "deploy" / "gunicorn.conf.py").is_file()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel"),
                           str(context)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "wheel").glob("safegrid-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gateway/app.py" in names
    assert any(n.startswith("sms/locale/") and n.endswith(".po") for n in names)
    assert any(n.startswith("geo/data/") and n.endswith(".geojson") for n in names)
    assert any(n.endswith("entry_points.txt") for n in names)  # the `safegrid` command
