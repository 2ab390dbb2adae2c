"""Per-device and per-user event rates (spec amplitude §1.5), counted in this process.

A request whose devices or users would go past ``eps`` events per second, averaged over the
window, or past the daily quota over the last 24 hours (hourly buckets), is refused whole with
429 and the SDK's maps; nothing of it is counted or stored.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from cohortbridge.analytics.ingest.logic.events import Event

TOO_MANY = "Too many requests for some devices and users"
HOUR = 3600


@dataclass
class Verdict:
    eps_threshold: int
    throttled_devices: dict[str, float] = field(default_factory=dict)
    throttled_users: dict[str, float] = field(default_factory=dict)
    quota_devices: dict[str, int] = field(default_factory=dict)
    quota_users: dict[str, int] = field(default_factory=dict)
    throttled_events: list[int] = field(default_factory=list)

    def body(self, *, batch: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": 429, "error": TOO_MANY, "eps_threshold": self.eps_threshold,
            "throttled_devices": self.throttled_devices, "throttled_users": self.throttled_users,
            "throttled_events": self.throttled_events,
        }  # fmt: skip
        if batch or self.quota_users or self.quota_devices:
            body["exceeded_daily_quota_users"] = self.quota_users
            body["exceeded_daily_quota_devices"] = self.quota_devices
        return body


class Throttle:
    def __init__(self, window_s: int, clock: Any = time.time) -> None:
        self.window_s = window_s
        self.clock = clock
        self._seconds: dict[tuple[Any, ...], Counter[int]] = defaultdict(Counter)
        self._hours: dict[tuple[Any, ...], Counter[int]] = defaultdict(Counter)
        self._checks = 0

    def _recent(self, key: tuple[Any, ...], now: int) -> int:
        return _live(self._seconds.get(key), now - self.window_s)

    def _today(self, key: tuple[Any, ...], hour: int) -> int:
        return _live(self._hours.get(key), hour - 24)

    def check(
        self, project_id: int, events: list[Event], *, eps: int, daily_quota: int
    ) -> Verdict | None:
        """None when the request may go ahead (and is then counted); else the verdict."""
        now = int(self.clock())
        hour = now // HOUR
        wanted: Counter[tuple[Any, ...]] = Counter()
        for event in events:
            wanted[(project_id, "device", event.device_id)] += 1
            if event.user_id is not None:
                wanted[(project_id, "user", event.user_id)] += 1
        verdict = Verdict(eps_threshold=eps)
        for key, count in wanted.items():
            rate = (self._recent(key, now) + count) / self.window_s
            today = self._today(key, hour) + count
            devices = key[1] == "device"
            if rate > eps:
                (verdict.throttled_devices if devices else verdict.throttled_users)[key[2]] = rate
            if today > daily_quota:
                (verdict.quota_devices if devices else verdict.quota_users)[key[2]] = today
        if (
            verdict.throttled_devices
            or verdict.throttled_users
            or verdict.quota_devices
            or (verdict.quota_users)
        ):
            verdict.throttled_events = [e.index for e in events if _hit(verdict, e)]
            return verdict
        for key, count in wanted.items():
            self._seconds[key][now] += count
            self._hours[key][hour] += count
        self._prune(now)
        return None

    def _prune(self, now: int) -> None:
        """Every few thousand checks, forget what is older than the windows."""
        self._checks += 1
        if self._checks % 5000:
            return
        for key in list(self._seconds):
            kept = Counter({s: n for s, n in self._seconds[key].items() if s > now - self.window_s})
            if kept:
                self._seconds[key] = kept
            else:
                del self._seconds[key]
        hour = now // HOUR
        for key in list(self._hours):
            kept = Counter({h: n for h, n in self._hours[key].items() if h > hour - 24})
            if kept:
                self._hours[key] = kept
            else:
                del self._hours[key]


def _live(buckets: Counter[int] | None, after: int) -> int:
    """The count of buckets newer than ``after``, dropping the older ones as it goes."""
    if not buckets:
        return 0
    for old in [b for b in buckets if b <= after]:
        del buckets[old]
    return sum(buckets.values())


def _hit(verdict: Verdict, event: Event) -> bool:
    return (
        event.device_id in verdict.throttled_devices or event.device_id in verdict.quota_devices
        or (event.user_id is not None and (event.user_id in verdict.throttled_users
                                            or event.user_id in verdict.quota_users))
    )  # fmt: skip
