"""deploy/prometheus/rules.yml: valid rules, naming only metrics that /metrics serves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "rules.yml"
WANTED = {"SafeGridQueueOlderThanSLA", "SafeGridNoSmsDelivered", "SafeGridSmsDeliveryFailureRate",
          "SafeGridSweeperFindingWork", "SafeGridAuditAnchorStale"}


def rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def served_names(client) -> set[str]:
    resp = client.get("/metrics")  # the test client comes from loopback
    assert resp.status_code == 200
    names = set()
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_the_rules_the_issue_asks_for_are_there():
    assert {rule["alert"] for rule in rules()} >= WANTED


def test_every_expression_names_metrics_that_exist(client):
    served = served_names(client)
    for rule in rules():
        named = set(re.findall(r"\bsafegrid_[a-z_]+", rule["expr"]))
        assert named, rule["alert"]
        assert named <= served, (rule["alert"], named - served)


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    # deploy/bootstrap.sh --dev installs Debian's prometheus, which brings promtool.
    assert promtool is not None, "promtool is missing: run deploy/bootstrap.sh --dev"
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
