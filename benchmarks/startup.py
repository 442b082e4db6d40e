"""Start-up of the commands a pre-commit hook or CI job runs: `--version`, `--help`, `validate`, `schema`,
and of `run --once` before its first call.

Whole processes (`python -m homeostat ...`), interleaved, median of N runs each, against the floor
of the same interpreter doing nothing (`python -c pass`), measured in the same run. Also lists the
heavy libraries each command imported (the contract: the first four need no AWS library, no
database and no scheduler). `run --once (nothing managed)` is a one-shot pass over an empty
directory with a migrated history: everything a `run --once` pays that is not its AWS calls
(no call is made), beside the floor of a boto3 script (`python -c "import boto3"`); it loads
boto3, SQLAlchemy and prometheus_client, and neither APScheduler nor rich. No assertion: the
figures are printed. `python -m benchmarks.startup`.
"""

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import compile_bytecode

RUNS = 7
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "desired-state"
HEAVY = ("boto3", "botocore", "sqlalchemy", "alembic", "apscheduler", "prometheus_client", "rich", "moto")
_PROBE = (
    "import runpy, sys, atexit\n"
    "heavy = {heavy!r}\n"
    "def report():\n"
    "    found = sorted(m for m in heavy if m in sys.modules)\n"
    "    sys.__stderr__.write('HEAVY ' + ','.join(found) + '\\n')\n"
    "atexit.register(report)\n"
    "sys.argv = ['homeostat', *{args!r}]\n"
    "runpy.run_module('homeostat', run_name='__main__')\n"
)


def _run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _heavy_imports(args: list[str]) -> str:
    probe = _PROBE.format(heavy=HEAVY, args=args)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("HEAVY ")]
    return lines[-1].removeprefix("HEAVY ") if lines else "?"


def main() -> None:
    commands = {
        "floor (python -c pass)": [sys.executable, "-c", "pass"],
        "--version": [sys.executable, "-m", "homeostat", "--version"],
        "--help": [sys.executable, "-m", "homeostat", "--help"],
        "validate examples": [sys.executable, "-m", "homeostat", "validate", str(EXAMPLES)],
        "schema": [sys.executable, "-m", "homeostat", "schema"],
    }
    compile_bytecode()
    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "desired-state"
        empty.mkdir()
        commands["floor (import boto3)"] = [sys.executable, "-c", "import boto3"]
        commands["run --once (nothing managed)"] = [
            sys.executable,
            *("-m", "homeostat", "run", "--once", "--desired-state", str(empty)),
            *("--history", f"sqlite:///{Path(scratch) / 'history.db'}", "--region", "us-east-1"),
            *("--listen", "127.0.0.1:0", "--log-format", "json"),
        ]
        _run(commands["run --once (nothing managed)"])  # creates and migrates the history (Alembic)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(RUNS):  # interleaved: a busy moment hits every command alike
            for name, command in commands.items():
                wall, cpu = _run(command)
                walls[name].append(wall)
                cpus[name].append(cpu)
        # The heavy libraries are listed while the scratch directory still exists.
        floor = statistics.median(walls["floor (python -c pass)"])
        print(f"start-up, median of {RUNS} whole processes (goal: under 0.3 s; contract: well under 0.5 s)")
        print("(CPU is user + system: on a busy machine it moves less than the wall time)")
        print(f"{'command':<30} {'wall s':>7} {'x floor':>8} {'cpu s':>6}  heavy libraries imported")
        for name, command in commands.items():
            median = statistics.median(walls[name])
            cpu = statistics.median(cpus[name])
            heavy = "" if name.startswith("floor") else _heavy_imports(command[3:]) or "none"
            if name.startswith("run"):
                heavy += f"; {median / statistics.median(walls['floor (import boto3)']):.1f}x import boto3"
            print(f"{name:<30} {median:>7.3f} {median / floor:>8.1f} {cpu:>6.3f}  {heavy}")


if __name__ == "__main__":
    main()
