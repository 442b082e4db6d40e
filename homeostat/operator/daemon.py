"""The long-running operator loop (being written)."""

from homeostat.operator.options import Settings


def run_daemon(settings: Settings) -> int:
    raise NotImplementedError("the daemon is not written yet")
