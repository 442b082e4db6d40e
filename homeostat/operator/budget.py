"""One shared API budget: a token bucket per AWS service and region (`--api-rate`).

AWS's published limits are per account and region and shared by every client in it
(RDS about 12 requests/s, CloudWatch Enable/DisableAlarmActions 3/s, ECS reads 20/s);
botocore's adaptive retry is per client and only reacts after being throttled. So every
request of every reconciler and worker of the process takes a token from its service's
bucket first (a botocore `before-send` hook, `aws_session.py`; reconcilers never see it),
and a throttling answer halves that bucket's rate, which then grows back linearly (AIMD):
homeostat stays below the limits and leaves room for the account's other clients.

Pure apart from the injected clock and sleep: the tests drive it with a fake clock.
"""

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

DEFAULT_RATES: Mapping[str, float] = MappingProxyType(
    {"rds": 10.0, "ecs": 20.0, "cloudwatch": 3.0, "application-autoscaling": 10.0}
)
# After a throttle: the rate halves (never below this share of the configured one), at most
# once per this many seconds (the answers to requests sent before a cut say nothing new),
# and grows back by this share of the configured rate per second.
FLOOR_SHARE = 1 / 16
CUT_SPACING_SECONDS = 1.0
RECOVERY_SHARE_PER_SECOND = 0.1
MAX_RATE = 100_000.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]
OnWait = Callable[[str, float], None]


def parse_rates(text: str) -> Mapping[str, float]:
    """`SERVICE=RPS,...` over the defaults (a service not named keeps its default). Raises
    ValueError with a one-line message naming the bad entry."""
    rates = dict(DEFAULT_RATES)
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        service, sep, value = entry.partition("=")
        service = service.strip()
        if not sep or not service:
            raise ValueError(f"expected SERVICE=RPS, got {entry!r}")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"{service}: expected requests per second, got {value.strip()!r}") from None
        if not 0 < rate <= MAX_RATE:  # also refuses nan and inf
            raise ValueError(f"{service}: requests per second must be above 0 and at most {MAX_RATE:g}")
        rates[service] = rate
    return MappingProxyType(rates)


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most one second's worth banked (the burst). A request
    reserves a token, possibly one not yet refilled: it is told how long to wait, and the
    reservation keeps concurrent requests in line without holding a lock while waiting."""

    configured: float
    now: float
    rate: float = 0.0
    tokens: float = 0.0
    last_cut: float | None = None

    def __post_init__(self) -> None:
        self.rate = self.configured
        self.tokens = self.configured  # a full second's burst at start

    def advance(self, now: float) -> None:
        elapsed = max(0.0, now - self.now)
        self.now = max(self.now, now)
        self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
        if self.rate < self.configured:
            self.rate = min(
                self.configured, self.rate + elapsed * self.configured * RECOVERY_SHARE_PER_SECOND
            )

    def reserve(self, now: float) -> float:
        """Take one token; the seconds to wait before sending (0 when one was banked)."""
        self.advance(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def throttled(self, now: float) -> None:
        """A throttling answer: halve the rate (once per CUT_SPACING_SECONDS), drop the bank."""
        self.advance(now)
        if self.last_cut is not None and now - self.last_cut < CUT_SPACING_SECONDS:
            return
        self.last_cut = now
        self.rate = max(self.configured * FLOOR_SHARE, self.rate / 2)
        self.tokens = min(self.tokens, 0.0)


class ApiBudget:
    """The process's buckets, one per (service, region), created on first use. Thread-safe."""

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        on_wait: OnWait | None = None,
    ) -> None:
        self.rates = dict(rates)
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._buckets: dict[tuple[str, str | None], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, service: str, region: str | None) -> TokenBucket | None:
        rate = self.rates.get(service)
        if rate is None:
            return None  # a service without a published limit here is not paced
        key = (service, region)
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(rate, self._clock())
        return self._buckets[key]

    def acquire(self, service: str, region: str | None) -> float:
        """Wait for a token of the service's bucket; the seconds waited (counted in on_wait)."""
        with self._lock:
            bucket = self._bucket(service, region)
            wait = 0.0 if bucket is None else bucket.reserve(self._clock())
        if wait > 0:
            self._sleep(wait)
            if self._on_wait is not None:
                self._on_wait(service, wait)
        return wait

    def throttled(self, service: str, region: str | None) -> None:
        with self._lock:
            bucket = self._bucket(service, region)
            if bucket is not None:
                bucket.throttled(self._clock())

    def rate(self, service: str, region: str | None) -> float | None:
        """The bucket's current rate (requests per second), None when the service is not paced."""
        with self._lock:
            bucket = self._bucket(service, region)
            if bucket is not None:
                bucket.advance(self._clock())
            return None if bucket is None else bucket.rate
