"""Fixed-window request counters, in process.

Each API process counts its own requests; behind a load balancer of N processes the effective
limit is N times the setting (docs/compatibility.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch),
        }


class FixedWindowLimiter:
    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def hit(self, key: str, group: str, limit: int, window_s: int, cost: int = 1) -> Verdict:
        now = time.time()
        window_start = int(now // window_s) * window_s
        reset = window_start + window_s
        start, used = self._windows.get((key, group), (window_start, 0))
        if start != window_start:
            used = 0
        if used + cost > limit:
            return Verdict(False, limit, max(limit - used, 0), math.ceil(reset))
        used += cost
        self._windows[(key, group)] = (window_start, used)
        return Verdict(True, limit, limit - used, math.ceil(reset))
