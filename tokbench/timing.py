"""Wall-clock accounting per pipeline stage, so overhead can be measured instead of guessed."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager


class StageTimer:
    """Seconds per stage, summed over calls. Stages run by the prefetch thread (load, fit) overlap the
    others, so the stages of a run can add up to more than its wall time."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[name] += time.perf_counter() - t0
                self.counts[name] += 1

    def as_dict(self) -> dict:
        return {k: round(v, 6) for k, v in sorted(self.seconds.items())}


NULL_TIMER = StageTimer()  # a sink for callers that do not care
