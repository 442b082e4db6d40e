"""Command-line options, each also read from `HOMEOSTAT_<OPTION>`; one-line errors.

The options themselves (flags, defaults, help, which command uses which) are declared in
`option_table.py`; this module builds the parser from them and converts and checks values.

Precedence: the command line, then the environment, then the default.
Usage errors exit 1 (not argparse's 2): `plan` exits 2 for drift, and a CI
job must never read a typo as drift.
"""

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from homeostat.desired_state.selector import EVERYTHING, Selector, parse_selector
from homeostat.operator.budget import DEFAULT_RATES, parse_rates
from homeostat.operator.option_table import (
    COMMAND_HELP,
    EXAMPLES,
    PER_COMMAND,
    SHARED,
    SHELLS,
    USES,
    Option,
    OptionKind,
)

USAGE_EXIT = 1
# Upper bounds of whole-number options (others: 1,000,000): --resync at most a day, --watch an hour.
INT_LIMITS = {"resync": 86_400, "limit": 1_000_000, "watch": 3_600, "concurrency": 64}
# Lower bounds of whole-number options (others: 1): one correction is no fight.
INT_FLOORS = {"fight_threshold": 2}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class UsageError(Exception):
    """Bad command-line or environment input; the message is the one line shown."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


# Flags that take a value (a following `-1h` is that value, not an option).
_VALUE_FLAGS = frozenset(
    flag
    for option in (*SHARED, *(o for options in PER_COMMAND.values() for o in options))
    if option.kind != OptionKind.BOOL
    for flag in option.flags
)


def _help(option: Option) -> str:
    default = option.default
    shown = "" if default is None or isinstance(default, bool | Selector) else f" (default: {default})"
    return f"{option.help}{shown} [env {option.env}]"


def _add(parser: argparse._ActionsContainer, option: Option) -> None:  # a parser or a group
    if option.kind == OptionKind.BOOL:
        parser.add_argument(
            *option.flags,
            dest=option.dest,
            action="store_true",
            default=argparse.SUPPRESS,
            help=_help(option),
        )
    else:
        parser.add_argument(
            *option.flags,
            dest=option.dest,
            default=argparse.SUPPRESS,
            help=_help(option),
            metavar=option.dest.upper(),
        )


def shared_of(command: str) -> tuple[Option, ...]:
    """The shared options `command` uses, in their usual order."""
    return tuple(o for o in SHARED if o.dest in USES[command])


def build_parser() -> Parser:
    parser = Parser(
        prog="homeostat",
        description="Keep AWS at the state declared in git.",
        epilog="'homeostat COMMAND --help' lists the options of a command, with an example.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    before = parser.add_argument_group(
        "options also accepted before the command (by the commands that use them)"
    )
    for option in SHARED:
        _add(before, option)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, summary in COMMAND_HELP.items():
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for option in (*shared_of(name), *PER_COMMAND[name]):
            _add(sub, option)
        if name == "validate":
            sub.add_argument(
                "path", nargs="*", default=[], help="files and directories (default: --desired-state)"
            )
        if name == "completion":
            sub.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    return parser


def _convert(option: Option, raw: Any, source: str) -> Any:
    if option.kind == OptionKind.BOOL:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise UsageError(f"{source}: expected true or false, got {raw!r}")
    if option.kind == OptionKind.INT:
        try:
            value = int(str(raw))
        except ValueError:
            raise UsageError(f"{source}: expected a whole number, got {raw!r}") from None
        highest = INT_LIMITS.get(option.dest, 1_000_000)
        lowest = INT_FLOORS.get(option.dest, 1)
        if not lowest <= value <= highest:
            raise UsageError(f"{source}: must be from {lowest} to {highest}, got {value}")
        return value
    if option.kind == OptionKind.PATH:
        return Path(str(raw))
    if option.kind in {OptionKind.DURATION, OptionKind.KIND, OptionKind.RATES, OptionKind.SELECTOR}:
        parse = {
            OptionKind.DURATION: _duration,
            OptionKind.KIND: canonical_kind,
            OptionKind.RATES: _rates,
            OptionKind.SELECTOR: _selector,
        }
        return parse[option.kind](str(raw), source)
    if option.kind == OptionKind.CHOICE and str(raw) not in option.choices:
        raise UsageError(f"{source}: expected one of {', '.join(option.choices)}, got {raw!r}")
    if option.dest == "listen" and (
        not re.fullmatch(r"\[?[A-Za-z0-9.:-]*\]?:[0-9]{1,5}", str(raw))
        or int(str(raw).rsplit(":", 1)[1]) > 65535
    ):
        raise UsageError(f"{source}: expected HOST:PORT with a port from 0 to 65535, got {raw!r}")
    return raw


def _rates(text: str, source: str) -> Mapping[str, float]:
    try:
        return parse_rates(text)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def _selector(text: str, source: str) -> Selector:
    try:
        return parse_selector(text)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc} (expected key=value,...)") from None


def _duration(text: str, source: str) -> timedelta:
    # Imported here: durations loads pydantic (its Duration type), which --help must not pay for.
    from homeostat.desired_state.durations import parse_duration

    if text.startswith("-"):
        raise UsageError(f"{source}: a duration is positive (e.g. 24h for the last day), got {text!r}")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def canonical_kind(text: str, source: str) -> str:
    """A kind as `kind:` spells it, whatever the letter case; an unknown kind is a usage error
    naming the kinds (a filter that silently matches nothing looks like an empty history)."""
    # Imported here: the registry loads every kind module (pydantic), which --help must not pay for.
    from homeostat.desired_state.identifiers import DESIRED_STATE_KIND
    from homeostat.reconcilers.registry import KINDS

    known = [str(d.kind) for d in KINDS] + [DESIRED_STATE_KIND]
    for kind in known:
        if kind.lower() == text.strip().lower():
            return kind
    raise UsageError(f"{source}: unknown kind {text!r}; the kinds are {', '.join(known)}")


def _negative_values_attached(argv: list[str]) -> list[str]:
    """`--since -1h` as `--since=-1h`: argparse takes a value that starts with `-` for an
    option and says "expected one argument"; attached, it reaches the option's own check."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in _VALUE_FLAGS and re.fullmatch(r"-[0-9].*", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


@dataclass(frozen=True, slots=True)
class Settings:
    command: str
    desired_state: Path
    history: str
    listen: str
    resync: int
    dry_run: bool
    region: str | None
    log_format: str | None
    once: bool = False
    json: bool = False
    follow: bool = False
    since: timedelta | None = None
    kind: str | None = None
    name: str | None = None
    revision: str | None = None
    limit: int = 100
    duration: timedelta | None = None
    watch: int | None = None
    wide: bool = False
    paths: tuple[Path, ...] = ()
    shell: str | None = None
    concurrency: int = 8
    api_rate: Mapping[str, float] = field(default_factory=lambda: DEFAULT_RATES)
    fight_threshold: int = 3
    fight_window: timedelta = timedelta(hours=1)
    selector: Selector = EVERYTHING

    @property
    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


def parse_settings(argv: list[str], environ: dict[str, str] | None = None) -> Settings | None:
    """Settings for the command, or None when only --version/--help was asked."""
    env = os.environ if environ is None else environ
    parser = build_parser()
    namespace = vars(parser.parse_args(_negative_values_attached(argv)))
    if namespace.pop("version", False):
        return None
    command = namespace.get("command")
    if not command:
        raise UsageError("missing command: one of " + ", ".join(COMMAND_HELP) + " (see 'homeostat --help')")
    values: dict[str, Any] = {"command": command}
    for option in SHARED:  # the defaults of those it does not use: never read, never checked
        values[option.dest] = option.default
    for option in (*shared_of(command), *PER_COMMAND[command]):
        flag = option.flags[0]
        if option.dest in namespace:
            values[option.dest] = _convert(option, namespace[option.dest], flag)
        elif option.env in env:
            values[option.dest] = _convert(option, env[option.env], option.env)
        elif option.kind == OptionKind.DURATION and option.default is not None:
            values[option.dest] = _convert(option, option.default, flag)  # "1h", as the help shows
        else:
            values[option.dest] = option.default
    if command == "validate":
        values["paths"] = tuple(Path(p) for p in namespace.get("path", ()))
    if command == "completion":
        values["shell"] = namespace["shell"]
    return Settings(**values)
