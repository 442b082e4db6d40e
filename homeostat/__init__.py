"""homeostat: keeps an ECS + Aurora + CloudWatch environment at the state declared in git."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`__version__`, read from the installed metadata only when asked for (PEP 562): importing
    importlib.metadata costs every command ~20 ms of start-up, and only --version and the
    daemon's build_info need it."""
    if name != "__version__":
        raise AttributeError(f"module 'homeostat' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("homeostat")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"
