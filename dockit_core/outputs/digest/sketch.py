"""Quantiles of durations in a bounded memory: a DDSketch (Masson, Rim and Lee, VLDB 2019).

Each duration falls in a bucket of logarithmic width, so any quantile read back is within
RELATIVE_ACCURACY of the true one (p95 of 10 ms: between 9.8 and 10.2 ms), whatever the number of
durations added (a reservoir sample's error would depend on its size and the luck of the draw). Memory:
at most MAX_BUCKETS counts; past them the lowest buckets are merged into one (their quantiles lose
precision first: the slow end, which the digest is about, keeps its own)."""

from __future__ import annotations

import math

RELATIVE_ACCURACY = 0.02
MAX_BUCKETS = 256  # 2% buckets: from 1 ms to 27 s, or 10 µs to 0.27 s; past it the fastest merge
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_VALUE = 1e-9  # durations at or below it (zero) are counted apart


class QuantileSketch:
    """Durations in, quantiles out (`quantile(0.95)`), within RELATIVE_ACCURACY."""

    __slots__ = ("buckets", "zeros", "count", "low", "high")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.low = math.inf  # the extremes, exact: a quantile read back never lies outside them
        self.high = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        if value <= _MIN_VALUE:
            self.zeros += 1
            return
        index = math.ceil(math.log(value) / _LOG_GAMMA)
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        if len(buckets) > MAX_BUCKETS:
            self._collapse()

    def _collapse(self) -> None:
        lowest, second = sorted(self.buckets)[:2]
        self.buckets[second] += self.buckets.pop(lowest)

    def quantile(self, q: float) -> float | None:
        """The nearest-rank quantile: the smallest duration with at least a fraction `q` of them at
        or under it (p95 of 20 executions: the 19th fastest; of 2: the slower). None when there are
        none."""
        if not self.count:
            return None
        rank = max(0, math.ceil(q * self.count) - 1)  # 0-based
        if rank < self.zeros:
            return 0.0
        seen = self.zeros
        found = max(self.buckets)
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen > rank:
                found = index
                break
        # the bucket's middle, in the sense that makes the relative error symmetric
        return min(max(2 * _GAMMA**found / (_GAMMA + 1), self.low), self.high)
