"""Rate limits and the step's budget.

:class:`Pacer` spreads a per-minute limit evenly (a generic cell-rate algorithm): on average ``per_minute`` units a
minute, never more than one second's worth at once, which is also how hosted APIs enforce theirs (a limit of
60,000 a minute is policed as 1,000 a second). A request larger than a second's worth goes out when its turn comes,
and the ones after it wait for it to be paid off.
"""

from __future__ import annotations

from dataclasses import dataclass


class Pacer:
    def __init__(self, per_minute: float, burst_s: float = 1.0):
        self.seconds_per_unit = 60.0 / per_minute
        self.burst_s = burst_s
        self._tat = float("-inf")  # when the units reserved so far are paid off

    def reserve(self, units: float, now: float) -> float:
        """Reserve ``units``; returns how many seconds to wait before using them."""
        tat = max(self._tat, now)
        self._tat = tat + units * self.seconds_per_unit
        return max(0.0, tat - self.burst_s - now)

    def adjust(self, units: float) -> None:
        """Correct a reservation by ``units`` (negative: the request cost less than reserved)."""
        self._tat += units * self.seconds_per_unit


@dataclass
class Budget:
    """``max_requests`` requests and ``max_tokens`` tokens (prompt + completion) per step. A request starts only if
    the requests started so far stay under the first and its estimated worst case, with those in flight, still fits
    the second; retries of a started request are not counted."""

    max_requests: int | None = None
    max_tokens: int | None = None
    started: int = 0
    tokens_used: int = 0
    tokens_in_flight: int = 0

    def refusal(self, estimate: int) -> str | None:
        if self.max_requests is not None and self.started >= self.max_requests:
            return f"budget: max_requests {self.max_requests} reached"
        if self.max_tokens is not None and self.tokens_used + self.tokens_in_flight + estimate > self.max_tokens:
            return (f"budget: max_tokens {self.max_tokens} reached ({self.tokens_used} used, "
                    f"{self.tokens_in_flight} in flight, {estimate} more needed)")
        return None

    def start(self, estimate: int) -> None:
        self.started += 1
        self.tokens_in_flight += estimate

    def finish(self, estimate: int, used: int) -> None:
        self.tokens_in_flight -= estimate
        self.tokens_used += used
