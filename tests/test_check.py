"""`check` against emulated portals: what it finds, the advice it gives, its exit code."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeEmulator, make_config, portal

from poller import commands, storage
from poller.check import CheckReport, Finding
from poller.cli import main
from poller.emulator import Emulator
from poller.spool.queue import Spool

# `database_url` at head without migrating: a copy of the session's SQLite file, or the
# PostgreSQL tables emptied (conftest's `engine`); `db upgrade` has tests of its own.
AT_HEAD = pytest.mark.usefixtures("engine")

PORTAL_CHECKS = [
    "reachable",
    "credentials",
    "scope timeman",
    "scope user",
    "scope department",
    "other users",
    "REST 3.0 records",
    "norms",
    "schedules",
    "scope calendar",
    "absences",
]


def write_config(
    path: Path, database_url: str, *portals: dict[str, object], http: dict[str, object] | None = None
) -> str:
    """A config file of `portals` and an optional [http] table (JSON values are TOML values too)."""
    lines = [f"[database]\nurl = {json.dumps(database_url)}"]
    if http:
        lines.append("[http]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in http.items()]
    for table in portals:
        lines.append("[[portals]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return str(path)


def outcomes(report: CheckReport, subject: str = "emu") -> dict[str, str]:
    return {f.check: f.outcome for f in report.findings if f.subject == subject}


def finding(report: CheckReport, check: str, subject: str = "emu") -> Finding:
    (found,) = [f for f in report.findings if f.subject == subject and f.check == check]
    return found


def check_json(capsys: pytest.CaptureFixture[str], config: str, *options: str) -> tuple[int, dict[str, Any]]:
    code = main(["check", "-c", config, "--format", "json", *options])
    return code, json.loads(capsys.readouterr().out)


@AT_HEAD
def test_a_ready_config_passes_every_check_and_exits_0(
    database_url: str, emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "config.toml", database_url, portal(emulator, "all", schedule_ids=[1, 4])
    )
    code, answer = check_json(capsys, config)
    assert code == 0
    assert (answer["ok"], answer["clean"]) == (True, True)
    assert [(f["subject"], f["check"], f["outcome"]) for f in answer["findings"]] == [
        ("database", "schema", "ok"),
        *(("emu", check, "ok") for check in PORTAL_CHECKS),
    ]
    assert all(f["advice"] == "" for f in answer["findings"])


def test_without_the_right_to_read_others_the_portal_has_a_problem_and_exit_is_1(
    make_emulator: MakeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = make_emulator(admin=False)
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    config = write_config(tmp_path / "config.toml", database, portal(emulator, [1, 2, 3]))
    code, answer = check_json(capsys, config)
    assert code == 1 and answer["ok"] is False
    (other,) = [f for f in answer["findings"] if f["check"] == "other users"]
    assert other["outcome"] == "problem"
    assert "User does not have access to managing other users work time" in other["detail"]
    assert "work time administrator" in other["advice"]
    # The rest is still checked: the caller's own records answer.
    (records,) = [f for f in answer["findings"] if f["check"] == "REST 3.0 records"]
    assert records["outcome"] == "ok"


def test_polling_only_the_webhooks_own_user_needs_no_right_to_read_others(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator = make_emulator(admin=False)
    config = make_config(portal(emulator, [1]), database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    report = commands.check(config)
    assert finding(report, "other users").outcome == "ok"
    assert finding(report, "other users").detail == "not needed: only the webhook's own user is polled"


def test_a_wrong_secret_is_a_credentials_problem_and_the_rest_is_skipped(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = emulator.webhook_url.replace(emulator.settings.webhook_secret, "wrong-secret-42")
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    config = write_config(tmp_path / "config.toml", database, portal(emulator, [1, 2], webhook_url=wrong))
    assert main(["check", "-c", config]) == 1
    captured = capsys.readouterr()
    assert "wrong-secret-42" not in captured.out + captured.err
    report = commands.check(commands.load_config(config))
    assert outcomes(report) == {
        "reachable": "ok",
        "credentials": "problem",
        **{check: "skipped" for check in PORTAL_CHECKS[2:]},
    }
    assert finding(report, "credentials").detail.endswith("HTTP 401 NO_AUTH_FOUND: Wrong authorization data")
    assert "webhook URL's secret" in finding(report, "credentials").advice
    assert "emu, credentials: the webhook URL's secret" in captured.out


def test_a_portal_without_rest_3_is_a_warning_that_fails_only_with_strict(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = make_emulator(rest_v3=False, department_scope=False)
    shutil.copyfile(head_sqlite_file, tmp_path / "db.sqlite3")  # at head, as after `db upgrade`
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    config = write_config(tmp_path / "config.toml", database, portal(emulator, "all"))
    code, answer = check_json(capsys, config)
    assert code == 0 and (answer["ok"], answer["clean"]) == (True, False)
    warned = {f["check"]: f for f in answer["findings"] if f["outcome"] == "warning"}
    assert sorted(warned) == ["REST 3.0 records", "scope department"]
    assert "ERROR_METHOD_NOT_FOUND" in warned["REST 3.0 records"]["detail"]
    assert warned["REST 3.0 records"]["advice"] == (
        "backfill and reconcile need a Bitrix24 build with REST 3.0; or set [reconcile] days = 0"
    )
    assert warned["scope department"]["advice"].startswith("add the department (Departments) scope")
    assert main(["check", "-c", config, "--strict"]) == 1


def test_a_portal_that_refuses_records_is_a_warning(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emulator = make_emulator(records_access=False)
    config = make_config(
        portal(emulator, [1, 2]), database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", reconcile={"days": 0}
    )
    records = finding(commands.check(config), "REST 3.0 records")
    assert records.outcome == "warning"
    assert "ACCESSDENIEDEXCEPTION" in records.detail
    assert records.advice == "give the webhook's or app's user the right to read all work time records"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_portal_and_a_missing_database_are_said_without_creating_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "never.sqlite3"
    url = f"http://127.0.0.1:{free_port()}/rest/1/abc/"
    config = write_config(
        tmp_path / "config.toml",
        f"sqlite:///{database}",
        {"name": "emu", "webhook_url": url, "users": [1]},
        http={"max_retries": 0},  # a refused connection is the finding; its retry would only wait
    )
    code, answer = check_json(capsys, config)
    assert code == 1
    by_check = {(f["subject"], f["check"]): f for f in answer["findings"]}
    assert by_check["database", "schema"]["outcome"] == "warning"
    assert by_check["database", "schema"]["detail"] == f"SQLite file {database} does not exist yet"
    assert by_check["emu", "reachable"]["outcome"] == "problem"
    assert by_check["emu", "reachable"]["detail"].endswith("connection refused")
    assert by_check["emu", "credentials"]["outcome"] == "skipped"
    assert not database.exists()


def test_a_database_that_cannot_be_reached_is_a_problem_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://poller:pw-s3cret-9@127.0.0.1:{free_port()}/worktime"
    config = make_config(
        {"name": "x", "webhook_url": "http://127.0.0.1:9/rest/1/a/", "users": [1]},
        database_url=url,
        http={"max_retries": 0},  # the portal is not the point: no backoff before its refusal
    )
    found = commands.check(config).findings[0]
    assert (found.subject, found.check, found.outcome) == ("database", "connect", "problem")
    assert found.detail.startswith("database postgresql+psycopg://poller:***@127.0.0.1:")
    assert "pw-s3cret-9" not in found.detail + found.advice


def test_an_old_schema_is_a_warning_naming_both_revisions(tmp_path: Path, emulator: Emulator) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = storage.make_engine(url)
    storage.upgrade_database(engine, "0002")
    engine.dispose()
    found = commands.check(make_config(portal(emulator, [1]), database_url=url)).findings[0]
    assert found.outcome == "warning"
    assert "schema at revision 0002, this poller needs " in found.detail
    assert found.advice.startswith("run `timeman-poller db upgrade`")


@AT_HEAD
def test_an_expired_oauth_token_is_refreshed_and_stored_when_the_database_is_ready(
    database_url: str, emulator: Emulator
) -> None:
    config = make_config(portal(emulator, [1, 2], oauth=True), database_url=database_url)
    emulator.expire_tokens()
    report = commands.check(config)
    assert report.clean
    assert (
        finding(report, "credentials", "oauth").detail == "OAuth access token accepted (refreshed and stored)"
    )
    engine = storage.make_engine(database_url)
    try:
        stored = storage.get_tokens(engine, "oauth")
    finally:
        engine.dispose()
    assert stored is not None and stored[1] != emulator.settings.refresh_token
    assert emulator.stats.token_refreshes == 1


def test_without_a_ready_database_an_expired_token_is_not_refreshed(
    tmp_path: Path, emulator: Emulator
) -> None:
    config = make_config(
        portal(emulator, [1, 2], oauth=True), database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}"
    )
    emulator.expire_tokens()
    report = commands.check(config)
    credentials = finding(report, "credentials", "oauth")
    assert credentials.outcome == "problem"
    assert "db upgrade" in credentials.advice
    assert emulator.stats.token_refreshes == 0  # the refresh token the daemon needs is not spent


def test_the_table_fits_the_terminal_and_gives_one_line_of_advice_per_problem(
    make_emulator: MakeEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = make_emulator(admin=False, rest_v3=False)
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    config = write_config(tmp_path / "config.toml", database, portal(emulator, [1, 2]))
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["check", "-c", config]) == 1
    lines = capsys.readouterr().out.splitlines()
    table = lines[: lines.index("")]
    assert all(len(line) <= 60 for line in table)
    assert table[0].split() == ["where", "check", "result", "found"]
    advice = lines[lines.index("") + 1 : -1]
    assert [line.split(":")[0] for line in advice] == [
        "database, schema",
        "emu, other users",
        "emu, REST 3.0 records",
    ]
    assert lines[-1] == "1 problem, 2 warnings"


def test_a_running_daemon_holding_the_spool_does_not_stop_the_check(
    tmp_path: Path, emulator: Emulator, head_sqlite_file: Path
) -> None:
    spool = tmp_path / "spool.jsonl"
    shutil.copyfile(head_sqlite_file, tmp_path / "x.sqlite3")  # at head, as after `db upgrade`
    config = make_config(
        portal(emulator, [1, 2]),
        database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        storage={"spool_path": str(spool)},
    )
    with Spool(spool):  # as the daemon holds it
        report = commands.check(config)
    assert report.clean
