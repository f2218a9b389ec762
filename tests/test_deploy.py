"""deploy/: the systemd units and the Kubernetes CronJobs run real command lines of this version."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import click
import pytest
import yaml

from conftest import cli_env, run_cli
from etl.cli import cli
from etl.config import _BY_VARIABLE, DEFAULT_KEY_VARIABLE

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SCRIPT = "/opt/aai-etl/bin/aai-etl"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name)
    return parser


def cronjobs() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())}


def container(cronjob: dict) -> dict:
    (only,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return only


def command_lines() -> dict[str, list[str]]:
    """Every aai-etl command line the deployment files run, without the program name."""
    lines = {}
    for name in ("aai-etl.service", "aai-etl-probe.service"):
        words = shlex.split(unit(name)["Service"]["ExecStart"])
        assert words[0] == SCRIPT, name
        lines[name] = words[1:]
    for name, cronjob in cronjobs().items():
        assert container(cronjob)["command"] == ["aai-etl"], name
        lines[name] = container(cronjob)["args"]
    return lines


def parse(args: list[str]) -> click.Context:
    """The command line through the CLI's own parser: unknown options, bad values and callbacks fail here."""
    ctx, command = cli.make_context("aai-etl", list(args)), cli
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


@pytest.mark.parametrize("name", ["aai-etl.service", "aai-etl-probe.service", "aai-etl", "aai-etl-probe"])
def test_each_deployed_command_line_parses(name):
    ctx = parse(command_lines()[name])
    assert ctx.info_name == ("status" if "probe" in name else "sync")


def test_the_parser_would_catch_a_wrong_command_line():
    with pytest.raises(click.UsageError):
        parse(["sync", "--log-format", "yaml"])
    with pytest.raises(click.UsageError):
        parse(["status", "--max-age", "two hours"])


def test_deployed_command_lines_run_a_sync_and_pass_the_probe(database_url, fake, tmp_path):
    fake.add(5)
    env = cli_env(fake, database_url)
    for name in ("aai-etl.service", "aai-etl", "aai-etl.service", "aai-etl-probe.service", "aai-etl-probe"):
        args = command_lines()[name]
        # Metrics go to this test's own places instead of the host's.
        args = [str(tmp_path / "aai_etl.prom") if before == "--metrics-file" else arg for before, arg in zip(["", *args], args, strict=False)]
        args = ["http://127.0.0.1:9" if before == "--pushgateway" else arg for before, arg in zip(["", *args], args, strict=False)]
        result = run_cli(args, env)
        assert result.exit_code == 0, (name, result.output)
    assert (tmp_path / "aai_etl.prom").exists()


def test_systemd_units_fit_together():
    service, timer = unit("aai-etl.service"), unit("aai-etl.timer")
    assert service["Service"]["Type"] == "oneshot" and service["Service"]["SuccessExitStatus"] == "75"
    assert timer["Timer"]["Persistent"] == "true" and timer["Install"]["WantedBy"] == "timers.target"
    probe = unit("aai-etl-probe.service")
    assert probe["Unit"]["OnFailure"] == "aai-etl-alert.service" and (DEPLOY / "systemd" / "aai-etl-alert.service").exists()
    assert (DEPLOY / "systemd" / "aai-etl-probe.timer").exists()


def test_the_cronjob_is_kubernetes_shaped_and_takes_its_key_from_a_secret():
    jobs = cronjobs()
    known = set(_BY_VARIABLE) | {DEFAULT_KEY_VARIABLE}
    for name, cronjob in jobs.items():
        assert cronjob["apiVersion"] == "batch/v1" and cronjob["kind"] == "CronJob"
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid" and cronjob["spec"]["startingDeadlineSeconds"] > 0
        assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        for variable in container(cronjob)["env"]:
            assert variable["name"] in known, (name, variable["name"])
            assert "secretKeyRef" in variable["valueFrom"], "secrets come from a Secret, never from the manifest"
    sync_env = {variable["name"] for variable in container(jobs["aai-etl"])["env"]}
    assert sync_env == {"ASSEMBLYAI_API_KEY", "AAI_ETL_DATABASE_URL"}
