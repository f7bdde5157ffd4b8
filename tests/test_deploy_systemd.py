"""deploy/systemd/: the units pass `systemd-analyze verify`, and say what SafeGrid needs.

systemd-analyze (Debian `systemd`, installed by bootstrap --dev) loads each unit as systemd
would and fails on a bad setting or a program that is not there. The units name the
production paths (/opt/safegrid); the test verifies copies pointing at this checkout and
its virtualenv, so every ExecStart must name a program that really exists. A parser check
then reads the units: who they run as, that they restart, the lanes, and that every
SafeGrid unit they name exists.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.delivery import queues

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
VENV_BIN = Path(sys.executable).parent
SERVICES = sorted(UNITS.glob("*.service"))


def systemd_analyze() -> str:
    program = shutil.which("systemd-analyze")
    assert program, "systemd-analyze is not installed: run deploy/bootstrap.sh --dev"
    return program


def here(text: str) -> str:
    """A unit's text with /opt/safegrid's paths pointing at this checkout."""
    return (text.replace("/opt/safegrid/.venv/bin/", f"{VENV_BIN}/")
            .replace("/opt/safegrid", str(ROOT)))


def verify(directory: Path) -> subprocess.CompletedProcess[str]:
    units = sorted(str(p) for p in directory.iterdir())
    return subprocess.run([systemd_analyze(), "verify", *units], capture_output=True,
                          text=True, timeout=120, cwd=directory, check=False)


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_systemd_analyze_verifies_every_unit(tmp_path):
    for path in UNITS.iterdir():
        (tmp_path / path.name).write_text(here(path.read_text()))
    done = verify(tmp_path)
    assert done.returncode == 0, done.stderr
    # Unknown keys and unsafe settings are only warned about: none may be.
    ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert not ours, "\n".join(ours)


def test_systemd_analyze_refuses_a_missing_program(tmp_path):
    text = here((UNITS / "safegrid-web.service").read_text()).replace(
        f"{VENV_BIN}/gunicorn", f"{VENV_BIN}/gunicorn-not-there")
    (tmp_path / "safegrid-web.service").write_text(text)
    done = verify(tmp_path)
    assert done.returncode != 0
    assert "gunicorn-not-there" in done.stderr


def test_systemd_analyze_warns_of_a_misspelt_key(tmp_path):
    text = here((UNITS / "safegrid-cron.service").read_text()).replace("Restart=", "Restrat=")
    (tmp_path / "safegrid-cron.service").write_text(text)
    done = verify(tmp_path)
    assert "Restrat" in done.stderr


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_each_service_runs_unprivileged_restarts_and_belongs_to_safegrid(path):
    parsed = unit(path)
    service = parsed["Service"]
    assert service.get("User") not in {None, "root"}
    assert service.get("Restart") == "always"
    assert parsed["Unit"].get("PartOf") == "safegrid.target"
    assert parsed["Install"].get("WantedBy") == "safegrid.target"
    program, *args = shlex.split(service["ExecStart"])
    assert Path(program).is_absolute()
    if program.startswith("/opt/safegrid/.venv/bin/"):
        assert (VENV_BIN / Path(program).name).exists(), program
        assert service.get("EnvironmentFile") == "/etc/safegrid/env"
    if Path(program).name == "safegrid":
        assert args[0] in {"worker", "cron"}
        if "--lane" in args:
            assert args[args.index("--lane") + 1] in queues.LANES


def test_every_lane_has_a_unit_and_the_target_starts_each():
    lanes = {}
    for path in SERVICES:
        args = shlex.split(unit(path)["Service"]["ExecStart"])
        if "--lane" in args:
            lanes[args[args.index("--lane") + 1]] = path.name
    assert set(lanes) == set(queues.LANES)
    wants = unit(UNITS / "safegrid.target")["Unit"]["Wants"].split()
    for name in wants:
        template = re.sub(r"@[^.]+\.", "@.", name)
        assert (UNITS / template).exists(), name
    for required in ("safegrid-web.service", "safegrid-cron.service"):
        assert required in wants
    assert {re.sub(r"@[^.]+\.", "@.", n) for n in wants} >= set(lanes.values())


def test_every_safegrid_unit_named_exists():
    for path in UNITS.iterdir():
        parsed = unit(path)
        for section in parsed.sections():
            for key in ("After", "Requires", "Wants", "PartOf", "WantedBy", "BindsTo"):
                for name in parsed[section].get(key, "").split():
                    if name.startswith("safegrid"):
                        template = re.sub(r"@[^.]+\.", "@.", name)
                        assert (UNITS / template).exists(), (path.name, key, name)


def test_smsbox_starts_with_bearerbox():
    smsbox = unit(UNITS / "safegrid-smsbox.service")["Unit"]
    assert smsbox["Requires"] == "safegrid-bearerbox.service"
    assert "safegrid-bearerbox.service" in smsbox["After"].split()
