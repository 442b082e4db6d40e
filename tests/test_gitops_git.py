"""Revision traceability with a real git repository, a git-sync style symlink swap, partial writes.

Specification (contract section 4, issue 6): inside a git checkout the
revision is the commit (12 hex digits), `<commit>-dirty.<hash>` when the
work tree differs; every history row carries it and `history --revision`
filters by it. A sidecar that publishes a new checkout by atomically
re-pointing a symlink is picked up. A file caught mid-write is never
enforced: the loader re-reads until two reads agree, and a write that stays
broken is rejected as a revision until the completed file arrives.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from homeostat.desired_state import loading
from homeostat.reconcilers.ecs_service import ECSService
from homeostat.reconcilers.registry import kind_table
from tests.conftest import MotoServer, run_cli
from tests.gitops_helpers import (
    desired_count,
    history,
    running_daemon,
    seed_ecs,
    service_manifest,
    wait_for,
    write_atomically,
)

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return result.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    return path


@pytest.mark.e2e
def test_history_rows_carry_the_commit_and_the_dirty_flag(moto_server: MotoServer, tmp_path: Path) -> None:
    """Rows of a clean checkout carry the commit; uncommitted edits give `<commit>-dirty.<hash>`."""
    seed_ecs(moto_server)
    repo = new_repo(tmp_path / "repo")
    directory = repo / "desired-state"
    write_atomically(directory / "api.yaml", service_manifest("api", 2))
    write_atomically(repo / "README.md", "the desired state of shop-production\n")
    first = commit_all(repo, "api at 2")
    db = f"sqlite:///{tmp_path / 'history.db'}"
    with running_daemon(moto_server, directory, db, tmp_path, resync=2) as daemon:
        wait_for("api at 2", lambda: desired_count(moto_server, "api") == 2)
        assert daemon.status()["revision"] == first[:12]

        write_atomically(directory / "api.yaml", service_manifest("api", 3))
        wait_for("the uncommitted edit", lambda: desired_count(moto_server, "api") == 3)
        dirty = daemon.status()["revision"]
        assert re.fullmatch(rf"{first[:12]}-dirty\.[0-9a-f]{{8}}", dirty)

        write_atomically(directory / "api.yaml", service_manifest("api", 4))
        second = commit_all(repo, "api at 4")
        wait_for("the committed edit", lambda: desired_count(moto_server, "api") == 4)
        wait_for("the commit as revision", lambda: daemon.status()["revision"] == second[:12])

    rows = [(r.after, r.revision) for r in history(db, kind="ECSService", name="api")]
    assert rows[0] == ({"desiredCount": 2}, first[:12])
    assert ({"desiredCount": 3}, dirty) in rows
    # The pass may run between the write and the commit (then the row carries that dirty state);
    # the label follows the commit at the latest on the next resync.
    [fourth] = [revision for after, revision in rows if after == {"desiredCount": 4}]
    assert fourth == second[:12] or fourth.startswith(f"{first[:12]}-dirty.")

    listed = run_cli("history", "--history", db, "--revision", first[:12], "--json")
    assert listed.returncode == 0, listed.stderr
    revisions = {json.loads(line)["revision"] for line in listed.stdout.splitlines()}
    assert revisions == {first[:12], dirty}, "a commit's prefix also selects its dirty states"


@pytest.mark.e2e
def test_symlink_swap_to_a_new_checkout_is_picked_up(moto_server: MotoServer, tmp_path: Path) -> None:
    """A git-sync style atomic re-point of the directory symlink loads the new commit."""
    seed_ecs(moto_server)
    origin = new_repo(tmp_path / "origin")
    write_atomically(origin / "api.yaml", service_manifest("api", 2))
    first = commit_all(origin, "api at 2")
    write_atomically(origin / "api.yaml", service_manifest("api", 5))
    second = commit_all(origin, "api at 5")

    root = tmp_path / "git-sync"
    root.mkdir()
    git(origin, "worktree", "add", "-q", "--detach", str(root / ".worktrees" / first), first)
    link = root / "current"
    link.symlink_to(Path(".worktrees") / first)
    db = f"sqlite:///{tmp_path / 'history.db'}"
    with running_daemon(moto_server, link, db, tmp_path) as daemon:
        wait_for("api at 2", lambda: desired_count(moto_server, "api") == 2)
        assert daemon.status()["revision"] == first[:12]

        git(origin, "worktree", "add", "-q", "--detach", str(root / ".worktrees" / second), second)
        staged = root / ".current.tmp"
        staged.symlink_to(Path(".worktrees") / second)
        os.replace(staged, link)

        wait_for("the new checkout to be applied", lambda: desired_count(moto_server, "api") == 5)
        assert daemon.status()["revision"] == second[:12]
        assert daemon.status()["rejectedRevision"] is None

    updates = [r for r in history(db, kind="ECSService", name="api") if r.action == "update_service"]
    assert [(r.after, r.revision) for r in updates] == [
        ({"desiredCount": 2}, first[:12]),
        ({"desiredCount": 5}, second[:12]),
    ]


@pytest.mark.e2e
def test_a_half_written_file_is_never_enforced(moto_server: MotoServer, tmp_path: Path) -> None:
    """A write that stalls while broken is rejected as a revision; the completed file is then applied."""
    seed_ecs(moto_server)
    repo = new_repo(tmp_path / "repo")
    write_atomically(repo / "api.yaml", service_manifest("api", 2))
    commit_all(repo, "api at 2")
    db = f"sqlite:///{tmp_path / 'history.db'}"
    complete = service_manifest("api", 12).replace(
        "service: shop-production-api", 'service: "shop-production-api"'
    )
    cut = complete.index("shop-production-api") + 5  # inside the quoted string: not YAML yet
    with running_daemon(moto_server, repo, db, tmp_path) as daemon:
        wait_for("api at 2", lambda: desired_count(moto_server, "api") == 2)
        good = daemon.status()["revision"]
        with (repo / "api.yaml").open("w") as writer:
            writer.write(complete[:cut])
            writer.flush()
            status = wait_for(
                "the partial file's rejection", lambda: (s := daemon.status())["rejectedRevision"] and s
            )
            assert status["revision"] == good
            assert any("invalid YAML" in e for e in status["rejectedErrors"])
            assert desired_count(moto_server, "api") == 2
            writer.write(complete[cut:])
        wait_for("the completed file to be applied", lambda: desired_count(moto_server, "api") == 12)
        status = wait_for("the rejection to clear", lambda: (s := daemon.status())["valid"] and s)
        assert status["rejectedRevision"] is None
        assert status["revision"].startswith(good + "-dirty.")
    assert [r.after for r in history(db, kind="ECSService", name="api") if r.action == "update_service"] == [
        {"desiredCount": 2},
        {"desiredCount": 12},
    ]


def test_the_loader_rereads_a_file_that_changes_while_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file completed between two reads is loaded complete: the truncated read is never returned."""
    complete = service_manifest("api", 12)
    truncated = complete[: complete.index("desiredCount: 12") + len("desiredCount: 1")]
    (tmp_path / "api.yaml").write_text(truncated)  # valid YAML, but the wrong count
    waits: list[float] = []

    def writer_finishes_during_the_wait(seconds: float) -> None:
        if not waits:
            (tmp_path / "api.yaml").write_text(complete)
        waits.append(seconds)

    monkeypatch.setattr(
        loading, "time", SimpleNamespace(sleep=writer_finishes_during_the_wait, time=time.time)
    )
    desired = loading.load_directory(tmp_path, kinds=kind_table())
    manifest = desired.resources[0].manifest
    assert isinstance(manifest, ECSService)
    assert manifest.spec.desiredCount == 12
    assert len(waits) == 2, "read (truncated), re-read (changed), re-read (stable)"


def test_the_loader_takes_a_file_once_two_reads_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-reading until stable is all the loader can do: a truncation that stays put and parses is loaded."""
    complete = service_manifest("api", 12)
    (tmp_path / "api.yaml").write_text(
        complete[: complete.index("desiredCount: 12") + len("desiredCount: 1")]
    )
    monkeypatch.setattr(loading, "time", SimpleNamespace(sleep=lambda _seconds: None, time=time.time))
    manifest = loading.load_directory(tmp_path, kinds=kind_table()).resources[0].manifest
    assert isinstance(manifest, ECSService)
    assert manifest.spec.desiredCount == 1


def test_files_older_than_the_settle_time_are_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pause for a directory nothing is writing to (a pre-commit hook, a settled checkout); a file
    modified just now, or during the read, is read again after a pause."""
    (tmp_path / "api.yaml").write_text(service_manifest("api", 3))
    waits: list[float] = []
    monkeypatch.setattr(loading, "time", SimpleNamespace(sleep=waits.append, time=time.time))
    loading.load_directory(tmp_path, kinds=kind_table())
    assert len(waits) == 1, "written just now: read, pause, read again (the same)"
    settled = time.time() - 2.5  # older than the settle time
    os.utime(tmp_path / "api.yaml", (settled, settled))
    waits.clear()
    desired = loading.load_directory(tmp_path, kinds=kind_table())
    assert waits == []
    assert desired.resources[0].name == "api"


def test_only_manifest_changes_make_the_revision_dirty(tmp_path: Path) -> None:
    """A README edit leaves the commit as the revision; a git-ignored manifest makes it dirty."""
    from homeostat.desired_state.loading import load_directory

    repo = new_repo(tmp_path / "repo")
    (repo / "api.yaml").write_text(service_manifest("api", 1))
    commit = commit_all(repo, "api")[:12]
    (repo / "README.md").write_text("notes\n")
    assert load_directory(repo, kinds=kind_table()).revision == commit
    (repo / ".gitignore").write_text("local.yaml\n")
    (repo / "local.yaml").write_text(service_manifest("web", 1))
    revision = load_directory(repo, kinds=kind_table()).revision
    assert revision.startswith(f"{commit}-dirty.")


def test_renames_and_odd_file_names_are_judged_by_the_new_path(tmp_path: Path) -> None:
    """`git status -z` entries: a staged rename of a README to a name with spaces and an arrow is not
    a manifest change; a rename of a manifest is; an empty repository has no commit to name."""
    from homeostat.desired_state.loading import load_directory

    repo = new_repo(tmp_path / "repo")
    assert load_directory(repo, kinds=kind_table()).revision.startswith("sha256:")
    (repo / "api.yaml").write_text(service_manifest("api", 1))
    (repo / "notes.md").write_text("notes\n")
    commit = commit_all(repo, "api")[:12]
    subprocess.run(["git", "-C", str(repo), "mv", "notes.md", "x.yaml -> notes old.md"], check=True)
    assert load_directory(repo, kinds=kind_table()).revision == commit
    subprocess.run(["git", "-C", str(repo), "mv", "api.yaml", "shop api.yaml"], check=True)
    assert load_directory(repo, kinds=kind_table()).revision.startswith(f"{commit}-dirty.")
