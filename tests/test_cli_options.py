"""Options declared once: each command's options come from its signatures and `poller.cli_options`."""

from __future__ import annotations

from datetime import date

import pytest

from poller.cli_commands import COMMANDS, Command, show_run
from poller.cli_parser import arguments, build_parser, given
from poller.config import Config


def parsed(argv: list[str]) -> dict[str, object]:
    args = build_parser(COMMANDS).parse_args(argv)
    return given(args.handler, args)


def command(name: str) -> Command:
    return next(c for c in COMMANDS if c.name == name)


def test_an_option_not_given_is_left_out_so_the_functions_default_applies() -> None:
    assert parsed(["run"]) == {}
    assert parsed(["run", "--no-migrate"]) == {"migrate": False}
    assert parsed(["poll", "--migrate"]) == {"migrate": True}
    assert parsed(["report"]) == {"name": "workdays"}  # a positional keeps its default


def test_one_declaration_serves_every_command_with_that_parameter() -> None:
    for name in ("report", "close", "verify", "backfill"):
        (portal,) = [a for a in arguments(command(name)) if a.name == "portals"]
        assert portal.flags == ["--portal"] and portal.option.repeatable
    assert parsed(["close", "--month", "2026-10", "--portal", "a", "--portal", "b", "--force"]) == {
        "month": date(2026, 10, 1),
        "portals": ["a", "b"],
        "force": True,
    }


def test_a_name_that_means_something_else_in_one_command_is_declared_for_it() -> None:
    assert parsed(["backfill", "--since", "2026-10-01", "--users", "1,5"])["users"] == (1, 5)
    assert parsed(["demo", "--users", "5"])["users"] == 5
    assert parsed(["report", "--user", "5", "--user", "7"])["users"] == [5, 7]


def test_a_parameter_without_a_declared_option_fails_the_parser_build() -> None:
    def paint(config: Config, colour: str = "red") -> None:
        """Paint."""

    with pytest.raises(KeyError, match="'colour' has no option"):
        build_parser([Command("paint", paint, show_run)])


def test_a_switch_on_by_default_without_an_off_flag_is_refused() -> None:
    def prune_all(config: Config, dry_run: bool = True) -> None:
        """Prune."""

    with pytest.raises(ValueError, match="--dry-run: on by default"):
        build_parser([Command("prune-all", prune_all, show_run)])


def test_a_parameter_without_a_default_is_a_required_option() -> None:
    (older_than,) = [a for a in arguments(command("prune")) if a.name == "older_than"]
    assert older_than.required and older_than.meaning().endswith("; required")


def test_the_format_choices_and_default_are_the_show_functions_own() -> None:
    formats = {c.name: a for c in COMMANDS for a in arguments(c) if a.name == "output_format"}
    assert {name: (list(a.choices or ()), a.default) for name, a in formats.items()} == {
        "report": (["table", "csv", "json"], "table"),
        "close": (["text", "json"], "text"),
        "verify": (["text", "json"], "text"),
        "status": (["text", "json"], "text"),
        "check": (["table", "json"], "table"),
    }


def test_the_emulator_settings_are_built_from_their_fields_options() -> None:
    settings = parsed(["emulator", "--users", "3", "--fault-hang", "0.5", "--secret", "s"])["settings"]
    assert (settings.users, settings.fault_hang, settings.webhook_secret, settings.rate) == (3, 0.5, "s", 2.0)  # type: ignore[attr-defined]
    assert parsed(["emulator"])["settings"].users == 25  # type: ignore[attr-defined]


def test_a_default_on_a_command_option_is_refused_it_belongs_on_the_function() -> None:
    """Two places for one default drift apart (a default only on the option never reached the call)."""
    import inspect

    from poller.cli_options import Option
    from poller.cli_parser import _argument

    def command(path: str) -> None: ...

    parameter = inspect.signature(command).parameters["path"]
    with pytest.raises(ValueError, match="give its default on the function"):
        _argument(parameter, Option(("--path",), "a path", default="x"))
