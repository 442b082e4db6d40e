"""The AWS seam reconcilers see: clients built once by the operator, and error text.

botocore is imported inside the functions that need it, never at import time: the
registry of kinds (and with it `validate` and `schema`) must load without any AWS library.
"""

import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, cast

from homeostat.reconcilers.actions import Action, ApplyResult

T = TypeVar("T")
R = TypeVar("R")
# Concurrent reads of one kind's observe (clusters, families): round trips, not CPU, set its
# wall time, and the shared API budget, not the worker count, sets the rate.
OBSERVE_WORKERS = 8
# The signals that stop a command (Ctrl-C, and SIGTERM from ECS, Kubernetes or systemd).
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def block_stop_signals() -> None:
    """Keep the stop signals off this worker thread (a thread pool's `initializer`), so that
    the kernel delivers them to the main thread. Python runs signal handlers on the main
    thread only: a SIGINT the kernel hands to a worker blocked in a read merely sets a flag,
    and a main thread blocked in a read of its own would not run the handler until that read
    ended (botocore's read timeout is 60 s), so a Ctrl-C'd `plan` hung as long. A thread
    created by `_read_thread` never has them unblocked at all."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


class AwsClients(Protocol):
    """Gives one long-lived boto3 client per service name (e.g. "ecs")."""

    def client(self, service: str) -> Any: ...


class RegionalClients(AwsClients, Protocol):
    """AwsClients that know their region and give the clients of any other (the operator's
    `BotoClients`); test doubles without regions are plain AwsClients, used for every region."""

    @property
    def region(self) -> str | None: ...

    def in_region(self, region: str) -> AwsClients: ...


def regional(aws: AwsClients) -> RegionalClients | None:
    """`aws` when it knows regions, else None. Asked per resource, so not a runtime-checkable
    protocol's isinstance: that walks the protocol's members on every call (~50 us each, 50 ms
    of a 1,000-service pass)."""
    return cast(RegionalClients, aws) if hasattr(aws, "in_region") else None


def default_region(aws: AwsClients) -> str | None:
    """The region of these clients (the daemon's default region), None when they know none."""
    known = regional(aws)
    return known.region if known is not None else None


def clients_in(aws: AwsClients, region: str | None) -> AwsClients:
    """The clients of `region` (None, or clients that know no regions: `aws` itself)."""
    known = regional(aws)
    if region is None or known is None or region == known.region:
        return aws
    return known.in_region(region)


def client_region(client: Any) -> str | None:
    """The region a boto3 client speaks to (None for a test double): what a reconciler keys
    its memory by, so two regions' alarms or families of one name never mix."""
    meta = getattr(client, "meta", None)
    region = getattr(meta, "region_name", None)
    return str(region) if region else None


def fan_out(fn: Callable[[T], R], items: Iterable[T], workers: int = OBSERVE_WORKERS) -> list[R]:
    """`fn` of each item, in the items' order, on up to `workers` threads (one item: inline).

    For independent reads of one observe (a listing per cluster, per family). The first
    exception is raised once the calls in flight have returned, and the items not started are
    never started: a shutdown (`ShuttingDown`, raised by the stop hook before a read) stops
    the whole observe at the next read, as it does sequentially."""
    given = list(items)
    if len(given) <= 1 or workers <= 1:
        return [fn(item) for item in given]
    results: dict[int, R] = {}
    failed: list[BaseException] = []
    lock = threading.Lock()
    order = iter(range(len(given)))

    def work() -> None:
        while True:
            with lock:
                index = None if failed else next(order, None)
            if index is None:
                return
            try:
                results[index] = fn(given[index])
            except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread below
                with lock:
                    failed.append(exc)

    _on_read_threads([work] * min(workers, len(given)))
    if failed:
        raise failed[0]
    return [results[index] for index in range(len(given))]


def together(first: Callable[[], T], second: Callable[[], R]) -> tuple[T, R]:
    """Two independent reads of one observe at once (`first` on a thread of its own, `second`
    on this one), e.g. ECS's autoscaler check beside its DescribeServices batches: the slower
    one, not their sum, sets the wall time. An exception of either is raised once both have
    returned, `second`'s first, so a shutdown stops both at their next read. Ctrl-C on `plan`
    (which observes on the main thread) is raised at once, not after `first`'s read."""
    answers: list[T] = []
    failed: list[BaseException] = []

    def run_first() -> None:
        try:
            answers.append(first())
        except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread below
            failed.append(exc)

    thread = _read_thread(run_first)
    try:
        answer = second()
    except Exception:
        thread.join()
        raise
    # (A KeyboardInterrupt is not waited for: the process is leaving, `first` with it.)
    thread.join()
    if failed:
        raise failed[0]
    return answers[0], answer


def _read_thread(target: Callable[[], None]) -> threading.Thread:
    """A started daemon thread for one observe's reads, with the stop signals blocked. Not a
    ThreadPoolExecutor's: those are joined when the interpreter exits, so a read blocked on an
    endpoint that never answers held a Ctrl-C'd `plan` for its whole read timeout and retries
    (about 40 s). The caller joins it; only an exiting process abandons it, and reads change
    nothing."""
    thread = threading.Thread(target=target, name="homeostat-read", daemon=True)
    # Blocked while it is created, so the thread inherits the mask (block_stop_signals); a stop
    # signal arriving meanwhile stays pending until this thread unblocks it again.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


def _on_read_threads(targets: list[Callable[[], None]]) -> None:
    for thread in [_read_thread(target) for target in targets]:
        thread.join()


class ListingCutShort(Exception):
    """A paged listing cannot be completed (e.g. the endpoint repeats a page token)."""


def aws_errors() -> tuple[type[Exception], ...]:
    """The exceptions an AWS call fails with (caught per call, turned into values)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, ListingCutShort)


def pages(call: Callable[..., Mapping[str, Any]], token: str, **kwargs: Any) -> Iterator[Mapping[str, Any]]:
    """Every page of a listing that continues with `token` (NextToken, Marker). Raises
    ListingCutShort when a token repeats: such a listing would never end, and is never complete."""
    seen: set[str] = set()
    while True:
        response = call(**kwargs)
        yield response
        following = response.get(token)
        if not following:
            return
        if following in seen:
            raise ListingCutShort(f"the listing repeated {token} {following!r}; it was cut short")
        seen.add(str(following))
        kwargs[token] = following


def error_code(exc: BaseException) -> str | None:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def describe_error(exc: BaseException) -> str:
    """A one-line, operator-readable form of an AWS failure."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "call")
        return f"{operation} failed: {error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def send_each(actions: Iterable[Action], send: Callable[[Action], str | None]) -> list[ApplyResult]:
    """Each action through `send`, in order: what it returns is a refusal (the action is not
    sent, and fails with that reason), an AWS failure is that action's error, and the next
    action is sent either way. Anything else raised (an unknown action: a bug) propagates, and
    the executor fails the actions of this unit."""
    results = []
    for action in actions:
        try:
            refused = send(action)
        except aws_errors() as exc:
            results.append(ApplyResult(action, describe_error(exc)))
        else:
            results.append(ApplyResult(action, refused))
    return results
