"""SafeGrid's check of Kannel configurations (sms/kannel_config.py), on the shipped files
and on broken ones; and the shipped files started by the real bearerbox and smsbox.

Kannel has no "check the configuration" switch: bearerbox and smsbox read it when they
start and exit on a key they do not know. So each shipped configuration, with its ports
and paths moved into the test's directory, is started for real and must come up with
smsbox connected and the SMPP link to the carrier configured.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.processes import KANNEL_TEST_TEMPLATE, Stack, find_program, free_port
from sms.kannel_config import check, main, parse
from sms.providers.kannel import sms_service_get_url

ROOT = Path(__file__).resolve().parent.parent.parent
PRODUCTION = ROOT / "deploy" / "kannel" / "kannel.conf"
COMPOSE = ROOT / "deploy" / "compose" / "kannel.conf.template"
ENV_EXAMPLE = ROOT / "deploy" / "compose" / "env.example"


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def compose_rendered() -> str:
    """The compose template as kannel.sh's envsubst fills it from env.example (every
    `${NAME}` must be there: a KeyError names one that is not)."""
    env = env_example()
    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", lambda m: env[m.group(1)], COMPOSE.read_text())


def test_the_shipped_configurations_pass():
    assert check(PRODUCTION.read_text(), "kannel.conf") == []
    assert check(COMPOSE.read_text(), "kannel.conf.template") == []  # ${...} count as set
    assert check(compose_rendered(), "rendered") == []


def test_the_test_configuration_passes_once_filled():
    filled = KANNEL_TEST_TEMPLATE.read_text().format(
        admin_port=1, smsbox_port=2, smsc_port=3, sendsms_port=4, admin_password="a",
        sendsms_username="safegrid", sendsms_password="p", default_sender="10690000",
        get_url=sms_service_get_url("http://127.0.0.1:8000/sms/inbound/kannel", "s"))
    assert check(filled, "test.conf") == []


def test_groups_are_read_as_kannel_reads_them():
    groups, problems = parse(PRODUCTION.read_text())
    assert problems == []
    kinds = [g.kind for g in groups]
    assert kinds.count("smsc") == 1
    [smsc] = [g for g in groups if g.kind == "smsc"]
    assert smsc.get("smsc") == "smpp"
    assert smsc.get("system-type") == ""  # a quoted empty value is a value
    [service] = [g for g in groups if g.kind == "sms-service"]
    assert service.get("get-url").startswith("https://")


BROKEN = [
    ('smsc-password = "CHANGE-ME-smpp-password"\n', "", "an SMPP bind needs smsc-password"),
    ("/sms/inbound/kannel?", "/sms/inbound?", "not SafeGrid's /sms/inbound/kannel"),
    ("forced-smsc = carrier\n", "forced-smsc = carrier2\n", "names no smsc group"),
    ("&id=%I", "", "must carry id=%I"),
    ("bearerbox-port = 13001", "bearerbox-port = 13002", "not core's smsbox-port"),
    ("group = sendsms-user", "group = sendsms-users", "unknown group 'sendsms-users'"),
    ("max-messages = 0", "max-messages = 1", "max-messages must be 0"),
    ("group = dlr-db\nid = kannel-dlr", "group = dlr-db\nid = other", "needs a dlr-db group"),
    ("transceiver-mode = true", "transceiver-mode = false", "MOs (reports by SMS)"),
    ('admin-password = "CHANGE-ME-admin-password"', 'admin-password = CHANGE ME',
     "must be quoted"),
    ("log-level = 1\naccess-log", "log-level = 1\nlog-level = 0\naccess-log", "set twice"),
    ("secret=CHANGE-ME-inbound-secret&", "", "carries no secret="),
]


@pytest.mark.parametrize(("old", "new", "said"), BROKEN, ids=[b[2] for b in BROKEN])
def test_a_broken_configuration_is_refused_and_says_why(old, new, said):
    text = PRODUCTION.read_text()
    assert old in text
    problems = check(text.replace(old, new, 1), "broken.conf")
    assert any(said in p for p in problems), problems


def test_two_carriers_need_two_names():
    text = PRODUCTION.read_text()
    smsc = text[text.index("group = smsc\n"):text.index("group = smsbox\n")]
    assert check(text + "\n" + smsc, "two.conf") != []
    assert check(text + "\n" + smsc.replace("smsc-id = carrier", "smsc-id = carrier-b"),
                 "two.conf") == []


def test_the_command_line_check(tmp_path):
    broken = tmp_path / "broken.conf"
    broken.write_text(PRODUCTION.read_text().replace("group = smsbox\n", "group = smsbx\n"))
    assert main([str(PRODUCTION)]) == 0
    done = subprocess.run([sys.executable, "-m", "sms.kannel_config", str(broken)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 1
    assert "unknown group 'smsbx'" in done.stdout


# --- the real Kannel reads the shipped files -----------------------------------------


def localised(text: str, tmp_path: Path) -> tuple[str, int, int]:
    """`text` with its ports free on loopback and its files in tmp_path."""
    admin, box, sendsms, smsc = (free_port() for _ in range(4))
    (tmp_path / "store").mkdir()
    (tmp_path / "dlr").mkdir()
    text = (text.replace("admin-port = 13000", f"admin-port = {admin}")
            .replace("smsbox-port = 13001", f"smsbox-port = {box}")
            .replace("bearerbox-port = 13001", f"bearerbox-port = {box}")
            .replace("sendsms-port = 13013", f"sendsms-port = {sendsms}")
            .replace("/var/log/kannel/", f"{tmp_path}/")
            .replace("/var/spool/kannel/store", f"{tmp_path}/store")
            .replace("/var/spool/kannel/dlr", f"{tmp_path}/dlr"))
    # The carrier: a loopback port nothing listens on (bearerbox keeps reconnecting).
    text = re.sub(r'(?m)^host = ".*"$', 'host = "127.0.0.1"', text)
    text = re.sub(r"(?m)^port = 2775$", f"port = {smsc}", text)
    return text, admin, sendsms


def status(admin_port: int, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=2)
    try:
        conn.request("GET", f"/status.txt?password={password}")
        return conn.getresponse().read().decode("utf-8", "replace")
    finally:
        conn.close()


def start_kannel(text: str, tmp_path: Path, admin_password: str) -> str:
    """Start bearerbox and smsbox on `text`; bearerbox's status once smsbox is connected."""
    config = tmp_path / "kannel.conf"
    text, admin, sendsms = localised(text, tmp_path)
    config.write_text(text)
    assert check(text, "localised") == []
    stack = Stack(tmp_path / "logs")
    try:
        stack._spawn("bearerbox", [find_program("bearerbox", "/usr/sbin"), "-v", "1",
                                   str(config)], port=admin)
        stack._spawn("smsbox", [find_program("smsbox", "/usr/sbin"), "-v", "1", str(config)],
                     port=sendsms)
        deadline = time.monotonic() + 20
        seen = ""
        while time.monotonic() < deadline:
            seen = status(admin, admin_password)
            if "smsbox:" in seen:
                return seen
            time.sleep(0.1)
        raise AssertionError(f"smsbox did not connect to bearerbox:\n{seen}")
    finally:
        stack.stop()


def test_bearerbox_and_smsbox_start_on_the_compose_configuration(tmp_path):
    seen = start_kannel(compose_rendered(), tmp_path, env_example()["KANNEL_ADMIN_PASSWORD"])
    assert "SMPP:127.0.0.1:" in seen  # the carrier bind, configured (not yet online)
    assert "carrier[carrier]" in seen
    assert "using spool storage" in seen  # DLRs kept on disk, as the template says


def test_bearerbox_and_smsbox_start_on_the_production_configuration(tmp_path):
    stack = Stack(tmp_path / "redis")
    try:
        redis = stack.redis()  # DLRs are kept in Redis (dlr-storage = redis)
        text = (PRODUCTION.read_text().replace("port = 6379", f"port = {redis.port}")
                .replace('password = "CHANGE-ME-redis-password"\n', ""))
        seen = start_kannel(text, tmp_path, "CHANGE-ME-admin-password")
    finally:
        stack.stop()
    assert "SMPP:127.0.0.1:" in seen
    assert "using redis storage" in seen
