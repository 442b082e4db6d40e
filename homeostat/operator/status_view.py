"""`homeostat status`: the running daemon's `/status`, read over HTTP from `--listen`.

The daemon already knows everything this shows (states, windows, slots, the health check from
its own observations), so the command asks it rather than AWS: no credentials, no AWS calls, and
it cannot disagree with the page at `/`. Standard library only (urllib), with a short timeout, so
a daemon that does not answer is one line and exit 1, not a hang.
"""

import json
import time
import urllib.error
import urllib.request
from typing import Any

from homeostat.operator.cli import EXIT_OK, CommandError, emit
from homeostat.operator.options import Settings

STATUS_TIMEOUT_SECONDS = 3.0


def status_url(listen: str) -> str:
    """The /status URL of a daemon listening on HOST:PORT; a wildcard host is asked on loopback."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - a wildcard to connect to, not to bind
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/status"


def fetch_status(listen: str, timeout: float = STATUS_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The daemon's /status document; CommandError (one line) when no daemon answers with one."""
    url = status_url(listen)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http to --listen only
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{url} answered HTTP {exc.code}: is a homeostat daemon listening there?") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise CommandError(f"no homeostat daemon answers on {url}: {reason}") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise CommandError(f"{url} did not answer with a /status document (not JSON)") from exc
    if not isinstance(document, dict) or "resources" not in document:
        raise CommandError(f"{url} did not answer with a /status document")
    return document


def cmd_status(settings: Settings) -> int:
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from homeostat.operator.console import print_status, status_renderables, terminal_console

    if settings.json:
        emit(json.dumps(fetch_status(settings.listen), indent=2, sort_keys=True))
        return EXIT_OK
    console = terminal_console()
    if settings.watch is None:
        print_status(fetch_status(settings.listen), console, wide=settings.wide)
        return EXIT_OK
    # --watch: redraw in place until Ctrl-C (cli.main turns it into exit 130). A daemon that
    # stops answering is shown as such and asked again at the next redraw.
    with Live(console=console, auto_refresh=False, screen=False) as live:
        while True:
            try:
                view = Group(*status_renderables(fetch_status(settings.listen), wide=settings.wide))
            except CommandError as exc:
                view = Group(Text(f"homeostat: {exc}", style="bold red"))
            stamp = Text(f"every {settings.watch}s · Ctrl-C to stop", style="dim")
            live.update(Group(view, stamp), refresh=True)
            time.sleep(settings.watch)
