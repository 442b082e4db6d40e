"""`homeostat demo` (being written)."""

from homeostat.operator.options import Settings


def run_demo(settings: Settings) -> int:
    raise NotImplementedError("the demo is not written yet")
