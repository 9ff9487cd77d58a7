"""Ride out an outage of something every code shares (a gateway, the warehouse) instead of failing code by code.

Per-code retries are right for per-code trouble. An outage of a shared dependency is not one: retrying
each code a few times and moving on fails the whole watchlist within seconds of an OpenD restart. So a
`Dependency` is shared by every loader that uses it, and while it is down:

* callers stop: `call` and `wait_until_up` block instead of starting more work;
* one caller, the prober, probes with capped exponential backoff (0.5 s doubling to 15 s, less under a
  short bound), a cheap probe that costs no rate-limit token, so the others never hammer a restarting server;
* when the probe answers, every caller runs its action again, so a crawl carries on from the page it
  was at; the outage ends when an action succeeds. A probe that answers while the real request still
  fails (a gateway that accepts connections but answers -100) keeps the same outage going, with the
  same start, the same backoff and no new first line;
* past `OutagePolicy.timeout` (SHORTINTEREST_OUTAGE_TIMEOUT) every caller gets DependencyDownError,
  naming the dependency and how long it was down, and so does every later caller.

Quiet logs by design: one line when an outage begins (what, since when, until when it will wait), one a
minute while it lasts (every tenth of the bound, if that is shorter), one when it ends; never a line per retry
or per caller.

One Dependency per gateway and one for the warehouse (pipelines.crawl.dependencies); a Crawler takes
them as `gateway=` and `warehouse=`. Where a load has other gateways to turn to, a worker can tell a
gateway outage with `is_outage` and hand its code on; `ride_out` is for when there is nowhere else to go.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pipelines.config import DEFAULT_OUTAGE_TIMEOUT

T = TypeVar("T")

# A stop message names at most this many of the codes not loaded, then counts the rest.
NAMED_CODES = 20
# Probe backoff (first and longest interval) and the still-down line's interval, at the default bound.
_BASE, _CAP, _REPORT_EVERY = 0.5, 15.0, 60.0


@dataclass(frozen=True, slots=True)
class OutagePolicy:
    """How long to wait for a dependency, how often to probe it, how often to say it is still down."""

    timeout: float = DEFAULT_OUTAGE_TIMEOUT
    base: float = _BASE
    cap: float = _CAP
    report_every: float = _REPORT_EVERY

    def __post_init__(self) -> None:
        if not self.timeout >= 0:
            raise ValueError(f"outage timeout must be 0 or more seconds, got {self.timeout}")
        if not 0 < self.base <= self.cap:
            raise ValueError(f"outage backoff needs 0 < base <= cap, got base={self.base} cap={self.cap}")
        if not self.report_every > 0:
            raise ValueError(f"outage report interval must be positive, got {self.report_every}")

    @classmethod
    def waiting_at_most(cls, timeout: float) -> OutagePolicy:
        """The policy for a load that waits at most `timeout` seconds (SHORTINTEREST_OUTAGE_TIMEOUT).

        At the default bound, and any longer one, the probe interval caps at 15 s and the still-down line comes
        once a minute. A shorter bound scales both down (a fortieth and a tenth of it), so a load told to wait
        half a minute probes often enough to catch the gateway's return and says more than nothing meanwhile.
        """
        return cls(
            timeout=timeout,
            cap=min(_CAP, max(_BASE, timeout / 40)),
            report_every=min(_REPORT_EVERY, max(1.0, timeout / 10)),
        )

    def backoff(self, probes: int, rng: random.Random) -> float:
        """Seconds before probe number `probes` (1-based): doubling to the cap, the upper half jittered.

        The jitter keeps the probers of several processes hit by the same outage out of lockstep.
        """
        bound = min(self.cap, self.base * 2 ** (probes - 1))
        return rng.uniform(bound / 2, bound)


class DependencyDownError(Exception):
    """A shared dependency stayed down past the outage bound: the load stops instead of failing every code."""

    def __init__(self, dependency: str, since: datetime, down_for: float, timeout: float, last_error: str) -> None:
        self.dependency = dependency
        self.since = since
        self.down_for = down_for
        self.timeout = timeout
        self.last_error = last_error
        super().__init__(
            f"{dependency} has been down for {format_duration(down_for)} (since {format_clock(since)}), longer than "
            f"the {format_duration(timeout)} a load waits (SHORTINTEREST_OUTAGE_TIMEOUT); last error: {last_error}"
        )


class Dependency:
    """One shared thing loaders need: while it is down, they all wait and one of them probes.

    `is_outage` tells this dependency's outage errors from everything else; `probe` raises such an error
    while the dependency is still down; `notify` receives the few lines worth logging. Thread-safe: share
    one instance between every loader thread using the dependency.
    """

    def __init__(
        self,
        name: str,
        *,
        is_outage: Callable[[BaseException], bool],
        probe: Callable[[], object],
        policy: OutagePolicy | None = None,
        notify: Callable[[str], None] | None = None,
        describe: Callable[[BaseException], str] = str,
    ) -> None:
        self.name = name
        self.is_outage = is_outage
        self.policy = policy or OutagePolicy()
        self._probe = probe
        self._notify = notify
        self._describe = describe
        self._rng = random.Random()
        self._cond = threading.Condition()
        # Outage state, all under _cond. _since is None while the dependency is up.
        self._since: float | None = None
        self._since_wall = datetime.now(UTC)
        self._probes = 0
        self._probing = False  # a caller is probing: everyone else waits
        self._last_error = ""
        self._next_report = 0.0
        self._gave_up: DependencyDownError | None = None
        self.outages = 0  # outages begun so far: what a report or test can count

    def __repr__(self) -> str:
        return f"Dependency({self.name!r}, {'down' if self._since is not None else 'up'})"

    @property
    def down(self) -> bool:
        return self._since is not None

    def call(self, action: Callable[[], T]) -> T:
        """Run `action`; while it fails with an outage of this dependency, wait that out and run it again.

        Raises DependencyDownError once the outage outlasts the bound; any other error propagates.
        """
        while True:
            self.wait_until_up()
            try:
                result = action()
            except Exception as exc:
                if not self.is_outage(exc):
                    self.answered()
                    raise
                self.ride_out(exc)
                continue
            self.answered()
            return result

    def wait_until_up(self) -> None:
        """Block while another caller probes this dependency; raise DependencyDownError if it gave up."""
        if self._since is None and self._gave_up is None:
            return
        with self._cond:
            while self._probing and self._gave_up is None:
                self._cond.wait()
            if self._gave_up is not None:
                raise self._gave_up

    def ride_out(self, error: BaseException) -> None:
        """`error`, an outage of this dependency, just failed the caller's action: return once it answers.

        The first caller to get here probes; the others wait for its verdict. Raises DependencyDownError
        past the bound.
        """
        with self._cond:
            if self._gave_up is not None:
                raise self._gave_up
            self._last_error = self._describe(error)
            now = time.monotonic()
            if self._since is None:
                self._begin(now)
            if self._probing:
                while self._probing and self._gave_up is None:
                    self._cond.wait()
                if self._gave_up is not None:
                    raise self._gave_up
                return
            self._probing = True
        try:
            self._probe_until_answered()
        finally:
            with self._cond:
                self._probing = False
                self._cond.notify_all()

    def answered(self) -> None:
        """An action needing this dependency succeeded (or failed for reasons of its own): any outage is over."""
        if self._since is None:
            return
        with self._cond:
            if self._since is None or self._probing:
                return
            down_for = time.monotonic() - self._since
            self._since = None
            self._say(f"{self.name} answers again after {format_duration(down_for)}; the load goes on")
            self._cond.notify_all()

    def _begin(self, now: float) -> None:
        self._since = now
        self._since_wall = datetime.now(UTC)
        self._probes = 0
        self._next_report = now + self.policy.report_every
        self.outages += 1
        until = self._since_wall + timedelta(seconds=self.policy.timeout)
        self._say(
            f"{self.name} is down since {format_clock(self._since_wall)} ({self._last_error}); the load pauses and "
            f"waits for it until {format_clock(until)} ({format_duration(self.policy.timeout)})"
        )

    def _probe_until_answered(self) -> None:
        """Probe with backoff until the probe answers; give up (for every caller) past the bound."""
        while True:
            with self._cond:
                if self._since is None:
                    return  # another caller's action went through meanwhile
                self._probes += 1
                remaining = self._since + self.policy.timeout - time.monotonic()
                if remaining <= 0:
                    self._give_up()
                    raise self._gave_up  # type: ignore[misc]
                delay = min(self.policy.backoff(self._probes, self._rng), remaining)
            time.sleep(delay)
            try:
                self._probe()
            except Exception as exc:
                if not self.is_outage(exc):
                    return  # it answered, with something else: the caller's own action will tell
                with self._cond:
                    self._last_error = self._describe(exc)
                    self._report_if_due()
                continue
            return  # it answers: every caller runs its action again, and the first success ends the outage

    def _report_if_due(self) -> None:
        now = time.monotonic()
        if self._since is None or now < self._next_report:
            return
        # On the outage's own clock, a line per interval since it began: counted from the last line instead, a
        # line that came a probe late would push every later one back, and a short outage could miss its next.
        while self._next_report <= now:
            self._next_report += self.policy.report_every
        until = self._since_wall + timedelta(seconds=self.policy.timeout)
        self._say(
            f"{self.name} still down after {format_duration(now - self._since)} ({self._last_error}); "
            f"waiting until {format_clock(until)}"
        )

    def _give_up(self) -> None:
        assert self._since is not None
        self._gave_up = DependencyDownError(
            self.name, self._since_wall, time.monotonic() - self._since, self.policy.timeout, self._last_error
        )
        self._cond.notify_all()

    def _say(self, line: str) -> None:
        if self._notify is None:
            return
        with contextlib.suppress(Exception):  # a broken log sink must not turn an outage into a crash
            self._notify(line)


def stopped_message(exc: DependencyDownError, not_loaded: Sequence[str]) -> str:
    """The one message a load stopped by an outage leaves: what was down, for how long, what is left."""
    named = ", ".join(not_loaded[:NAMED_CODES])
    if len(not_loaded) > NAMED_CODES:
        named += f" and {len(not_loaded) - NAMED_CODES} more"
    return (
        f"stopped: {exc}\n{len(not_loaded)} code{'s' if len(not_loaded) != 1 else ''} not loaded: {named}; "
        "the next load resumes each from what the warehouse holds (an interrupted crawl from its cursor)"
    )


def format_duration(seconds: float) -> str:
    """`45 s`, `3 min 05 s`, `1 h 02 min`: short enough for a log line, exact enough to act on."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")
