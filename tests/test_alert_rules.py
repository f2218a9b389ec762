"""deploy/prometheus/alerts.yml: the alert rules the documentation shows, through the real promtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from etl.outputs.metrics import _HELP

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = "/usr/bin/promtool"  # Debian's prometheus package; .ci/run installs it


def promtool(*args: str) -> None:
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_are_valid_prometheus_rules():
    promtool("check", "rules", str(RULES))


def test_every_account_alerts_on_its_own_even_while_another_succeeds():
    promtool("test", "rules", str(ROOT / "tests" / "prometheus" / "alerts_test.yml"))


def test_the_rules_use_only_metrics_the_job_writes():
    expressions = [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"aai_etl_(\w+)", expr)}
    assert used and used <= set(_HELP), used - set(_HELP)


def test_the_metrics_page_shows_the_rules_file():
    page = (ROOT / "docs" / "running" / "metrics.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", page, re.S)]
    assert yaml.safe_load(RULES.read_text()) in blocks
