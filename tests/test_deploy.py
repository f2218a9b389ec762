"""deploy/: the systemd units and the Kubernetes CronJobs run real command lines of this version."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import click
import pytest
import yaml
from conftest import cli_env, run_cli

from etl.cli import cli
from etl.config import _BY_VARIABLE, DEFAULT_KEY_VARIABLE, SETTINGS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SCRIPT = "/opt/aai-etl/bin/aai-etl"
DEPLOYING = (DEPLOY.parent / "docs" / "running" / "deploying.md").read_text()
# A strict Kubernetes schema check, offline: kubernetes-validate in a venv of its own (.ci/run makes it),
# against the oldest Kubernetes version still commonly run.
KUBERNETES_VALIDATE = DEPLOY.parent / ".venv-k8s" / "bin" / "kubernetes-validate"
KUBERNETES_VERSION = "1.30.0"


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


UNITS = sorted(path.name for path in (DEPLOY / "systemd").iterdir())
SERVICES = ("aai-etl.service", "aai-etl-probe.service")


def installed_units(root: Path) -> Path:
    """A root directory with the host's systemd units, ours in /etc/systemd/system as the docs install
    them, and a stand-in for each command they run that the host lacks (the venv in /opt)."""
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(DEPLOY / "systemd", root / "etc/systemd/system")
    for name in UNITS:
        for command in unit(name).get("Service", "ExecStart", fallback="").split()[:1]:
            program = root / command.lstrip("/")
            program.parent.mkdir(parents=True, exist_ok=True)
            program.write_text("#!/bin/sh\n")
            program.chmod(0o755)
    return root


def systemd_analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/usr/bin/systemd-analyze", *args], capture_output=True, text=True)


def test_systemd_verifies_the_units(tmp_path):
    # verify exits 0 on a misspelt key or a bad value and only says so: anything it says is a failure.
    result = systemd_analyze("verify", "--man=no", f"--root={installed_units(tmp_path)}", *UNITS)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_verify_would_catch_a_mistake(tmp_path):
    root = installed_units(tmp_path)
    path = root / "etc/systemd/system/aai-etl.service"
    path.write_text(path.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    result = systemd_analyze("verify", "--man=no", f"--root={root}", "aai-etl.service")
    assert "Unknown key 'ProtectSytem'" in result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_the_services_are_sandboxed(name):
    # systemd's exposure score, 0 to 10: under 5 is rated OK. --threshold counts in tenths.
    result = systemd_analyze("security", "--offline=yes", "--threshold=49", str(DEPLOY / "systemd" / name))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_the_install_paths_match_everywhere():
    service = unit("aai-etl.service")["Service"]
    words = shlex.split(service["ExecStart"])
    metrics_directory = str(Path(words[words.index("--metrics-file") + 1]).parent)
    assert metrics_directory in service["ReadWritePaths"].split()
    (metrics,) = [setting for setting in SETTINGS if setting.name == "metrics_file"]
    assert str(Path(metrics.placeholder.strip('"')).parent) == metrics_directory
    install = DEPLOYING.split("\n## Installing the systemd units\n", 1)[1].split("\n## ", 1)[0]
    for name in SERVICES:
        service = unit(name)["Service"]
        for path in (service["EnvironmentFile"], service["WorkingDirectory"], str(Path(SCRIPT).parent.parent)):
            assert path in install, (name, path)
        assert f"useradd --system --user-group --shell /usr/sbin/nologin --home-dir {service['WorkingDirectory']} {service['User']}" in install
        assert service["User"] == service["Group"] == "aai-etl"
    assert metrics_directory in install


def pod(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", ["aai-etl", "aai-etl-probe"])
def test_the_cronjobs_run_locked_down(name):
    spec = pod(cronjobs()[name])
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container(cronjobs()[name])["securityContext"]
    assert context == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    # Where it may write (temporary files) is a volume of its own.
    (mount,) = container(cronjobs()[name])["volumeMounts"]
    assert mount["mountPath"] == "/tmp" and {"name": mount["name"], "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]


def test_the_cronjob_image_is_this_version():
    for cronjob in cronjobs().values():
        assert container(cronjob)["image"].rsplit("/", 1)[-1] == f"aai-etl:{version('aai-etl')}"


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess:
    assert KUBERNETES_VALIDATE.exists(), (
        f"no {KUBERNETES_VALIDATE}: python3 -m venv .venv-k8s && .venv-k8s/bin/pip install kubernetes-validate==1.37.0"
        " (.ci/run does)"
    )
    return subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", KUBERNETES_VERSION, str(path)],
        capture_output=True, text=True,
    )


def test_a_strict_kubernetes_schema_accepts_the_cronjobs():
    result = kubernetes_validate(DEPLOY / "kubernetes" / "cronjob.yaml")
    assert result.returncode == 0 and result.stdout.count("passed") == 2, result.stdout + result.stderr


def test_the_strict_schema_would_catch_a_mistake(tmp_path):
    wrong = tmp_path / "cronjob.yaml"
    wrong.write_text((DEPLOY / "kubernetes" / "cronjob.yaml").read_text().replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1))
    assert kubernetes_validate(wrong).returncode != 0
