"""Command-line options, each also read from `HOMEOSTAT_<OPTION>`; one-line errors.

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
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

from homeostat.desired_state.selector import EVERYTHING, Selector, parse_selector
from homeostat.operator.budget import DEFAULT_RATES, parse_rates

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


class OptionKind(StrEnum):
    """How an option's text is converted (see `_convert`)."""

    STR = "str"
    INT = "int"
    BOOL = "bool"
    PATH = "path"
    DURATION = "duration"
    CHOICE = "choice"
    KIND = "kind"
    RATES = "rates"  # SERVICE=RPS,... (budget.parse_rates)
    SELECTOR = "selector"  # key=value,... (selector.parse_selector)


@dataclass(frozen=True, slots=True)
class Option:
    dest: str
    flags: tuple[str, ...]
    kind: OptionKind
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return "HOMEOSTAT_" + self.dest.upper()


SHARED = (
    Option(
        "desired_state",
        ("--desired-state",),
        OptionKind.PATH,
        Path("desired-state"),
        "desired-state directory",
    ),
    Option(
        "history",
        ("--history",),
        OptionKind.STR,
        "sqlite:///homeostat.db",
        "SQLAlchemy URL of the history database",
    ),
    Option(
        "listen",
        ("--listen",),
        OptionKind.STR,
        "127.0.0.1:9464",
        "HOST:PORT of the metrics and health endpoints",
    ),
    Option("resync", ("--resync",), OptionKind.INT, 60, "seconds between full passes"),
    Option(
        "dry_run",
        ("--dry-run",),
        OptionKind.BOOL,
        False,
        "observe and diff, record dry-run actions, change nothing",
    ),
    Option("region", ("--region",), OptionKind.STR, None, "AWS region (default: the boto3 chain)"),
    Option(
        "concurrency", ("--concurrency",), OptionKind.INT, 8, "workers sending one kind's mutations of a pass"
    ),
    Option(
        "api_rate",
        ("--api-rate",),
        OptionKind.RATES,
        DEFAULT_RATES,
        "SERVICE=RPS,... requests per second per AWS service and region (default "
        + ",".join(f"{k}={v:g}" for k, v in DEFAULT_RATES.items())
        + ")",
    ),
    Option(
        "selector",
        ("--selector",),
        OptionKind.SELECTOR,
        EVERYTHING,
        "key=value,...: only the resources whose labels match (a shard; default: all)",
    ),
    Option(
        "log_format",
        ("--log-format",),
        OptionKind.CHOICE,
        None,
        "json or console (default: console on a terminal)",
        ("json", "console"),
    ),
)
PER_COMMAND: dict[str, tuple[Option, ...]] = {
    "run": (
        Option("once", ("--once",), OptionKind.BOOL, False, "one full pass, then exit"),
        Option(
            "fight_threshold",
            ("--fight-threshold",),
            OptionKind.INT,
            3,
            "corrections of one field, each changed back, that make a resource Fighting (2 or more)",
        ),
        Option(
            "fight_window",
            ("--fight-window",),
            OptionKind.DURATION,
            "1h",
            "the time those corrections are counted in, and a Fighting resource's quiet time to resume",
        ),
    ),
    "plan": (
        Option("json", ("--json",), OptionKind.BOOL, False, "machine-readable output"),
        Option("kind", ("--kind",), OptionKind.KIND, None, "only resources of this kind"),
        Option("name", ("--name",), OptionKind.STR, None, "only resources of this name"),
        Option("wide", ("--wide",), OptionKind.BOOL, False, "full values (task definition ARNs)"),
    ),
    "validate": (),
    "history": (
        Option("since", ("--since",), OptionKind.DURATION, None, "only rows newer than this (e.g. 24h)"),
        Option("kind", ("--kind",), OptionKind.KIND, None, "only this kind (any letter case)"),
        Option("name", ("--name",), OptionKind.STR, None, "only this resource name"),
        Option("revision", ("--revision",), OptionKind.STR, None, "only rows of this revision (prefix)"),
        Option("limit", ("--limit",), OptionKind.INT, 100, "at most this many rows (the newest)"),
        Option("json", ("--json",), OptionKind.BOOL, False, "one JSON object per line"),
        Option("wide", ("--wide",), OptionKind.BOOL, False, "cut nothing: full values, ARNs and revisions"),
        Option("follow", ("--follow", "-f"), OptionKind.BOOL, False, "keep printing new rows until Ctrl-C"),
    ),
    "status": (
        Option("json", ("--json",), OptionKind.BOOL, False, "print the daemon's /status document"),
        Option("watch", ("--watch",), OptionKind.INT, None, "redraw every this many seconds"),
        Option("wide", ("--wide",), OptionKind.BOOL, False, "full values: never cut a column"),
    ),
    "schema": (),
    "completion": (),
    "demo": (
        Option("duration", ("--duration",), OptionKind.DURATION, None, "stop after this long (e.g. 90s)"),
    ),
}
# Flags that take a value (a following `-1h` is that value, not an option).
_VALUE_FLAGS = frozenset(
    flag
    for option in (*SHARED, *(o for options in PER_COMMAND.values() for o in options))
    if option.kind != OptionKind.BOOL
    for flag in option.flags
)
COMMAND_HELP = {
    "run": "run the daemon (or one pass with --once)",
    "plan": "print what would change; exit 0 in sync, 2 drift or conflict, 1 error",
    "validate": "check manifests without AWS; exit 0 valid, 1 invalid",
    "history": "print the action history",
    "status": "show what the running daemon sees (its /status on --listen)",
    "schema": "print the JSON Schema of the manifests",
    "demo": "run against an embedded local AWS with visible drift being fixed",
    "completion": "print a shell completion script (bash or zsh)",
}
# The shared options each command uses: only these are listed in its --help, read from the
# environment and checked (a stray bad HOMEOSTAT_LISTEN is none of `schema`'s business).
USES: dict[str, tuple[str, ...]] = {
    "run": tuple(o.dest for o in SHARED),
    "plan": ("desired_state", "region", "log_format", "api_rate", "selector"),
    "validate": ("desired_state", "selector"),  # --selector: also check that shard's bonds
    "history": ("history", "selector"),  # --selector: the rows that shard's daemon wrote
    "status": ("listen",),
    "schema": (),
    "demo": ("history", "listen", "resync", "dry_run", "concurrency", "api_rate"),
    "completion": (),
}
# The commands that log (structured events on stderr); the others print only their output.
LOGGING_COMMANDS = frozenset({"run", "plan", "demo"})
EXAMPLES = {
    "run": "homeostat run --desired-state ./desired-state --region eu-west-1\n"
    "  homeostat run --once --dry-run",
    "plan": "homeostat plan --desired-state ./desired-state\n"
    "  homeostat plan --kind ECSService --name api --json",
    "validate": "homeostat validate ./desired-state\n  homeostat validate services.yaml alarms.yaml",
    "history": "homeostat history --since 24h --kind ecsservice\n  homeostat history --follow",
    "status": "homeostat status --listen 127.0.0.1:9464\n  homeostat status --watch 5",
    "schema": "homeostat schema > homeostat.schema.json",
    "demo": "homeostat demo --duration 90s",
    "completion": "homeostat completion bash > ~/.local/share/bash-completion/completions/homeostat\n"
    "  homeostat completion zsh > ~/.zfunc/_homeostat",
}
SHELLS = ("bash", "zsh")


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
