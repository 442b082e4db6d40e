"""homeostat: keeps an ECS + Aurora + CloudWatch environment at the state declared in git."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("homeostat")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
