"""The one retry policy every connector uses, beside the interface (tenacity).

Only short waits happen inside a call (a few seconds in total, exponential backoff with
jitter). Longer waits are the caller's: a :class:`~bulletin.errors.RateLimited` whose
``retry_after`` is further away than the remaining budget is re-raised at once, so the
delivery can store ``next_attempt_at`` and move on.

- :class:`~bulletin.errors.Rejected`, :class:`~bulletin.errors.AuthError`: never retried.
- :class:`~bulletin.errors.Retryable` (and ``RateLimited`` within budget): retried.
- :class:`~bulletin.errors.Ambiguous` or a malformed answer to a publish: the platform is
  asked (:meth:`Connector.find_published`) before the publish is tried again.

Each retry is logged with the account, the operation and the error class; error messages
are Bulletin's own and never carry credentials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from bulletin.clock import Clock, SystemClock
from bulletin.errors import (
    Ambiguous,
    AuthError,
    ConnectorError,
    MalformedResponse,
    RateLimited,
    Rejected,
)

if TYPE_CHECKING:  # tenacity is imported when a call is first retried
    from tenacity import RetryCallState, Retrying

    from bulletin.connectors.base import Connector, OutgoingPost, PublishResult

log = logging.getLogger(__name__)
T = TypeVar("T")

# How far before an attempt find_published looks. Posts are found by their text, not their
# time: the window only bounds the cost, and is wide enough for any clock skew or step.
RECONCILE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries. ``budget`` is the most seconds spent waiting in one call."""

    attempts: int = 4
    initial_wait: float = 0.25
    max_wait: float = 2.0
    jitter: float = 0.25
    budget: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Clock = field(default_factory=SystemClock, compare=False)

    def on_clock(self, clock: Clock | None) -> RetryPolicy:
        """This policy reading ``clock`` (its connector's), so that a ``retry_after`` on that
        clock is waited out as it should; unchanged for None."""
        return self if clock is None else replace(self, clock=clock)

    def _rate_limit_wait(self, error: RateLimited) -> float:
        if error.retry_after is None:
            return self.initial_wait
        return max((error.retry_after - self.clock.now()).total_seconds(), 0.0)

    def _should_retry(self, state: RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        if isinstance(error, Rejected | AuthError):
            return False
        if isinstance(error, RateLimited):
            return self._rate_limit_wait(error) <= self.budget - state.idle_for
        return isinstance(error, ConnectorError) and error.retryable

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return self._rate_limit_wait(error)
        from tenacity import wait_exponential_jitter

        backoff = wait_exponential_jitter(
            max=self.max_wait, jitter=self.jitter, multiplier=self.initial_wait
        )
        return min(backoff(state), max(self.budget - state.idle_for, 0.0))

    def _retrying(self, account: str, what: str) -> Retrying:
        from tenacity import Retrying, stop_after_attempt

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            log.warning(
                "retrying %s on account %s after %s: %s (attempt %d, waiting %.2fs)",
                what,
                account,
                type(error).__name__,
                error,
                state.attempt_number,
                wait,
            )

        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=self._should_retry,
            before_sleep=before_sleep,
            sleep=self.sleep,
            reraise=True,
        )

    def call(self, account: str, what: str, operation: Callable[[], T]) -> T:
        """Run ``operation`` (idempotent: a read, a hide, a delete) with retries."""
        return self._retrying(account, what)(operation)

    def publish(
        self,
        connector: Connector,
        post: OutgoingPost,
        attempt: Callable[[OutgoingPost], PublishResult],
    ) -> PublishResult:
        """Publish ``post`` through ``attempt`` at most once on the platform.

        After an ambiguous attempt (timeout after sending, unreadable answer), every later
        attempt first asks :meth:`Connector.find_published`; a found post is returned
        instead of publishing again. A duplicate refusal after an ambiguous attempt is
        checked the same way.

        :raises Ambiguous: an attempt may have worked and the post could not be found; every
            failure after an uncertain attempt is raised as Ambiguous, so the caller
            reconciles before trying again.
        """
        since = self.clock.now() - RECONCILE_WINDOW
        uncertain = False

        def reconcile() -> PublishResult | None:
            found = connector.find_published(post, since)
            if found is not None:
                log.warning(
                    "publish on account %s: found post %s after an uncertain attempt; "
                    "not publishing again",
                    connector.name,
                    found.remote_id,
                )
            return found

        def once() -> PublishResult:
            nonlocal uncertain
            if uncertain:
                found = reconcile()
                if found is not None:
                    return found
            try:
                return attempt(post)
            except (Ambiguous, MalformedResponse):
                uncertain = True
                raise
            except Rejected:
                if uncertain:
                    found = reconcile()
                    if found is not None:
                        return found
                raise

        try:
            return self._retrying(connector.name, "publish")(once)
        except Ambiguous:
            raise
        except ConnectorError as e:
            if not uncertain:
                raise
            # Once an attempt may have worked, no later failure may say "nothing happened":
            # the caller must reconcile before it publishes again.
            raise Ambiguous(
                f"account {connector.name}: an earlier attempt may have published the post "
                f"and it could not be confirmed ({type(e).__name__})"
            ) from e
