"""The `timeman-poller` argument parser, built from the commands' signatures (the Alembic way).

Each parameter of a command's function, and of its `show`, gets the option declared for
its name in `poller.cli_options`; its default is the parameter's, one without a default is
required. An option not given is left out of the call, so the function's own default
applies. The same `arguments` feed the help, the call and docs/cli-reference.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from poller import __version__
from poller.cli_commands import GROUPS, Command
from poller.cli_options import GLOBAL_OPTIONS, NO_DEFAULT, SUPPLIED, Fields, Option, option_for
from poller.logs import PROGRAM


class UsageError(Exception):
    """argparse found a bad command line; `parser` is the (sub)command it concerns."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """Raise usage errors instead of exiting, so that `main` can print them as JSON too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


@dataclass(frozen=True)
class Argument:
    """One option of one command: the parameter it fills, its declaration, its default."""

    name: str
    option: Option
    default: Any  # the parameter's (or the option's); NO_DEFAULT: required
    choices: Sequence[str] | None
    within: Fields | None = None  # a field of this parameter, not a parameter itself
    within_name: str = ""

    @property
    def flags(self) -> list[str]:
        """The flags that set it; a switch's `off` flag comes second."""
        return [*self.option.flags, *((self.option.off[0],) if self.is_switch and self.option.off else ())]

    @property
    def is_switch(self) -> bool:
        return isinstance(self.default, bool)

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT and not self.option.positional

    def meaning(self, flag: str = "") -> str:
        """The help of `flag`, its default said unless the help says it already."""
        option = self.option
        if self.is_switch:
            on = flag in option.flags
            text = option.help if on else (option.off or ("", ""))[1]
            return f"{text} (default)" if on == self.default else text
        if self.required:
            return f"{option.help}; required"
        shown = self.within.defaults.get(self.name) if self.within else None
        if shown is None and self.default not in (None, (), NO_DEFAULT):
            shown = self.default
        if shown is None or "default" in option.help:
            return option.help
        return f"{option.help} (default {shown})"

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        option = self.option
        quiet = argparse.SUPPRESS  # not given: left out of the call, the function's default applies
        if self.is_switch:
            if option.off is None and self.default:
                raise ValueError(f"{option.flags[0]}: on by default and no flag turns it off")
            for flags, action in (
                (option.flags, "store_true"),
                (option.off[:1] if option.off else (), "store_false"),
            ):
                if flags:
                    parser.add_argument(
                        *flags, dest=self.name, action=action, default=quiet, help=self.meaning(flags[0])
                    )
            return
        keywords: dict[str, Any] = {"help": self.meaning(), "default": quiet}
        if option.positional:  # argparse checks a positional's default against its choices
            keywords |= {"nargs": "?", "default": self.default}
        else:
            keywords |= {"dest": self.name, "required": self.required}
        if option.type is not None:
            keywords["type"] = option.type
        if option.metavar is not None:
            keywords["metavar"] = option.metavar
        if self.choices is not None:
            keywords["choices"] = list(self.choices)
        if option.repeatable:
            keywords["action"] = "append"
        parser.add_argument(*option.flags, **keywords)


def arguments(command: Command) -> list[Argument]:
    """Every option of `command`: its function's parameters, then its `show`'s, then `--database`."""
    found: list[Argument] = []
    database = [_parameter("database_url", None)] if command.database_option else []
    parameters: dict[str, inspect.Parameter] = {}
    for parameter in (*_parameters(command.function), *_parameters(command.show), *database):
        parameters.setdefault(parameter.name, parameter)  # the function's default first
    for parameter in parameters.values():
        declared = option_for(command.name, parameter.name)
        if isinstance(declared, Fields):
            found += _fields(command.name, parameter.name, declared)
        else:
            found.append(_argument(parameter, declared))
    return found


def given(command: Command, args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, as keywords; a Fields parameter built whole."""
    values: dict[str, Any] = {}
    parts: dict[str, tuple[Fields, dict[str, Any]]] = {}
    for argument in arguments(command):
        dest = argument.option.flags[0] if argument.option.positional else argument.name
        if argument.within is not None:
            part = parts.setdefault(argument.within_name, (argument.within, {}))[1]
            if hasattr(args, dest):
                part[argument.name] = getattr(args, dest)
        elif hasattr(args, dest):
            values[argument.name] = getattr(args, dest)
    for name, (fields, part) in parts.items():
        values[name] = fields.kind(**part)
    return values


def accepted(function: Callable[..., Any], values: dict[str, Any]) -> dict[str, Any]:
    """The keywords of `values` that `function` takes."""
    names = inspect.signature(function).parameters
    return {name: value for name, value in values.items() if name in names}


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The parser of every command: its help is the command's docstring, its options `arguments`."""
    parser = _Parser(
        prog=PROGRAM,
        description="Poll Bitrix24 timeman.status on a schedule and keep the history in SQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for command in commands:
        into = subparsers
        group, _, name = command.name.rpartition(" ")
        if group:
            if group not in groups:
                sub = subparsers.add_parser(
                    group, help=GROUPS[group].rstrip(".").lower(), description=GROUPS[group]
                )
                _add_global_options(sub, top=False)
                groups[group] = sub.add_subparsers(dest=f"{group}_command", required=True, metavar="COMMAND")
            into = groups[group]
        sub = into.add_parser(
            name,
            help=command.help.partition("\n")[0],
            description=command.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_global_options(sub, top=False)
        sub.set_defaults(handler=command)
        for argument in arguments(command):
            argument.add_to(sub)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after its name.

    After the command they default to SUPPRESS, so that a value given before it is not
    overwritten by the subcommand's default.
    """
    options = parser.add_argument_group("global options")
    for name, option in GLOBAL_OPTIONS.items():
        default = (None if option.default is NO_DEFAULT else option.default) if top else argparse.SUPPRESS
        keywords: dict[str, Any] = {"dest": name, "default": default, "help": option.help}
        if option.type is not None:
            keywords["type"] = option.type
        if option.choices is not None:
            keywords["choices"] = list(option.choices)
        options.add_argument(*option.flags, **keywords)


def _parameters(function: Callable[..., Any]) -> Iterator[inspect.Parameter]:
    """The parameters of `function` that are options; annotations read only for a Literal."""
    try:
        signature = inspect.signature(function, eval_str=True)
    except NameError:  # an annotation imported for type checking only: no Literal there
        signature = inspect.signature(function)
    for parameter in signature.parameters.values():
        if parameter.name not in SUPPLIED and parameter.kind not in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            yield parameter


def _parameter(name: str, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)


def _argument(parameter: inspect.Parameter, declared: Option) -> Argument:
    if declared.default is not NO_DEFAULT:  # one place for a default: the function's signature
        raise ValueError(f"{parameter.name}: give its default on the function, not on the option")
    default = parameter.default
    annotation = parameter.annotation
    literal = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else None
    return Argument(parameter.name, declared, default, declared.choices or literal)


def _fields(command: str, name: str, fields: Fields) -> list[Argument]:
    """The options of a Fields parameter `name`, one per field, each with the field's default."""
    defaults = {f.name: f.default for f in dataclasses.fields(fields.kind)}
    found = []
    for field in fields.names:
        declared = option_for(command, field)
        assert isinstance(declared, Option), f"{field}: a field is one option"
        default = None if defaults[field] is dataclasses.MISSING else defaults[field]
        found.append(Argument(field, declared, default, declared.choices, within=fields, within_name=name))
    return found
