"""Wall time and peak memory of a stage, measured by sampling the process's resident set."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    # what the stage itself added: peak minus the resident set when it started
    added_mb: float = 0.0


class measure:
    """Context manager: ``with measure() as m: ...`` then ``m.seconds``, ``m.peak_rss_mb``."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.result = Measurement()
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> Measurement:
        self._start = self._peak = self._proc.memory_info().rss
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self.result

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.result.seconds = time.perf_counter() - self._t0
        self.result.peak_rss_mb = self._peak / 2**20
        self.result.added_mb = (self._peak - self._start) / 2**20
        return False
