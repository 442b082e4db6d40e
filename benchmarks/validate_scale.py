"""`homeostat validate` at scale: 2,500 / 5,000 / 10,000 documents, and a 26 MB file.

Each size is validated three times by `python -m homeostat validate DIR` as a
child process; the script prints the median wall time and that child's peak
RSS (from wait4, the child's own), and, measured in a separate child, how the
time splits between reading the bytes, parsing + per-document validation and
the cross-document checks. The documents are 70% ECSService, 20% AlarmActions
and 10% SnapshotRetention, 50 per file, all distinct (the state is valid).

    .venv/bin/python -m benchmarks.validate_scale
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (2_500, 5_000, 10_000)
RUNS = 3
PER_FILE = 50

ECS = """apiVersion: homeostat/v1
kind: ECSService
metadata:
  name: svc-{i:05d}
  labels: {{team: team-{team}}}
spec:
  cluster: cluster-{cluster}
  service: svc-{i:05d}
  desiredCount: {count}
  taskDefinition: svc-{i:05d}:{revision}
"""
ALARMS = """apiVersion: homeostat/v1
kind: AlarmActions
metadata:
  name: alarms-{i:05d}
spec:
  alarmNamePrefix: svc-{i:05d}-
  actionsEnabled: true
"""
SNAPSHOTS = """apiVersion: homeostat/v1
kind: SnapshotRetention
metadata:
  name: snapshots-{i:05d}
spec:
  dbClusterIdentifier: db-{i:05d}
  snapshotPrefix: db-{i:05d}-manual-
  schedule: "0 3 * * *"
  retention: {{maxAge: 7d, minKeep: 1}}
"""


def document(i: int) -> str:
    template = SNAPSHOTS if i % 10 == 0 else ALARMS if i % 10 < 3 else ECS
    return template.format(i=i, team=i % 7, cluster=i % 10, count=i % 5, revision=i % 90 + 1)


def write_state(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    for start in range(0, count, PER_FILE):
        docs = [document(i) for i in range(start, min(start + PER_FILE, count))]
        (directory / f"part-{start // PER_FILE:04d}.yaml").write_text("---\n".join(docs))


def validate(directory: Path) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MB, exit code, last output line) of one `python -m homeostat validate`."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "homeostat", "validate", str(directory)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().strip().splitlines()
    return elapsed, usage.ru_maxrss / 1024, child.returncode, lines[-1] if lines else ""


def phases(directory: Path) -> dict[str, float]:
    """In this process: read, parse + validate each document, cross-document checks (seconds)."""
    from homeostat.desired_state import loading
    from homeostat.reconcilers.registry import kind_table

    started = time.perf_counter()
    files, revision = loading.read_directory(directory)
    read = time.perf_counter() - started
    checking: list[float] = []
    real_check = loading.cross_check

    def timed_check(*args: object, **kwargs: object) -> object:
        begun = time.perf_counter()
        try:
            return real_check(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            checking.append(time.perf_counter() - begun)

    loading.cross_check = timed_check  # type: ignore[assignment] # instrumentation in a child process only
    started = time.perf_counter()
    loading.load_files(files, directory, revision, kinds=kind_table())
    loaded = time.perf_counter() - started
    return {"read": read, "parse": loaded - sum(checking), "cross_check": sum(checking)}


def measured_phases(directory: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.validate_scale", "--phases", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def main() -> None:
    import yaml

    loader = "C (libyaml)" if getattr(yaml, "__with_libyaml__", False) else "pure Python"
    print(f"validate at scale, median of {RUNS} runs, YAML loader: {loader}")
    print("  documents  files   total   peak RSS   read   parse+validate   cross-document")
    with tempfile.TemporaryDirectory(prefix="homeostat-validate-") as scratch:
        for count in SIZES:
            directory = Path(scratch) / f"state-{count}"
            write_state(directory, count)
            runs = [validate(directory) for _ in range(RUNS)]
            codes = {code for _, _, code, _ in runs}
            if codes != {0}:
                raise SystemExit(f"validate failed on {count} documents: {runs[-1][3]}")
            split = measured_phases(directory)
            print(
                f"  {count:9,d}  {len(list(directory.iterdir())):5d}  "
                f"{statistics.median(r[0] for r in runs):5.2f} s  "
                f"{statistics.median(r[1] for r in runs):6.0f} MB  "
                f"{split['read']:5.2f} s  {split['parse']:9.2f} s  {split['cross_check']:12.2f} s"
            )
        big = Path(scratch) / "big"
        big.mkdir()
        text = "".join(document(i) + "---\n" for i in range(200_000 // 7))
        with (big / "all.yaml").open("w") as handle:
            while handle.tell() < 26_000_000:
                handle.write(text)
        size_mb = (big / "all.yaml").stat().st_size / 1e6
        elapsed, rss, code, line = validate(big)
        print(f"  one {size_mb:.0f} MB file: exit {code} in {elapsed:.2f} s, peak RSS {rss:.0f} MB: {line}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--phases"]:
        print(json.dumps(phases(Path(sys.argv[2]))))
    else:
        main()
