"""The command line's vocabulary: every option of every command (its flags, environment
variable, default and help), which shared options each command uses, and the commands' help
and examples. Declarations only: `options.py` builds the parser from them (and the
`completion` command its shell script from that parser) and converts and checks values.
"""

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from homeostat.desired_state.selector import EVERYTHING
from homeostat.operator.budget import DEFAULT_RATES


class OptionKind(StrEnum):
    """How an option's text is converted (`options._convert`)."""

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
