"""Process metrics: counters, gauges and histograms, rendered as Prometheus text 0.0.4.

Every node (peer, orderer, gateway) counts what it does into metrics registered in
`REGISTRY`, the process's registry, where they are defined (module level, next to the
code that updates them); the operations endpoint (`common.operations`) renders it for
`GET /metrics`. Values a node already holds (ledger heights) are read at scrape time
instead, through a `CallbackGauge` in a registry of the node's own.

Updating a sample is a dict lookup and an in-place add, without a lock: samples are
updated from the event loop or from one worker thread each (the committer), and the
GIL keeps the add whole there. Creating the sample of a new label combination takes
a lock, so two threads never create two samples for the same labels.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "REGISTRY",
    "CallbackGauge",
    "Counter",
    "Gauge",
    "Histogram",
    "MetricFamily",
    "Registry",
    "Sample",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; the Prometheus client libraries' default buckets."""

MetricType = Literal["counter", "gauge", "histogram"]
LabelValues = tuple[str, ...]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of the exposition: name suffix, label pairs and value."""

    suffix: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """A metric's samples at one instant, ready to render."""

    name: str
    help: str
    type: MetricType
    samples: tuple[Sample, ...]


class _Metric(ABC):
    """What every metric shares: name, help, label names, one child per label values."""

    type: MetricType

    def __init__(self, name: str, help: str, labels: Sequence[str]) -> None:
        _check_names(name, labels)
        self.name = name
        self.help = help
        self.label_names = tuple(labels)

    @abstractmethod
    def collect(self) -> MetricFamily:
        """The metric's samples now."""


_C = TypeVar("_C")


class _Parent(_Metric, Generic[_C]):
    """A metric whose samples live in children, one per combination of label values."""

    def __init__(self, name: str, help: str, labels: Sequence[str]) -> None:
        super().__init__(name, help, labels)
        self._children: dict[LabelValues, _C] = {}
        self._lock = threading.Lock()
        if not self.label_names:
            self._children[()] = self._new_child()

    def labels(self, *values: str) -> _C:
        """The child for these label values (in label-name order), made on first use.

        Raises:
            ValueError: not one value per label name.
        """
        child = self._children.get(values)
        if child is None:
            child = self._add_child(values)
        return child

    def _add_child(self, values: LabelValues) -> _C:
        if len(values) != len(self.label_names):
            raise ValueError(
                f"metric {self.name}: expected {len(self.label_names)} label values "
                f"{self.label_names}, got {values!r}"
            )
        with self._lock:
            return self._children.setdefault(values, self._new_child())

    def _items(self) -> list[tuple[LabelValues, _C]]:
        return sorted(self._children.items(), key=lambda item: item[0])

    def _pairs(self, values: LabelValues) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.label_names, values, strict=True))

    @abstractmethod
    def _new_child(self) -> _C:
        """A child for a new combination of label values."""


class CounterChild:
    """One counter sample; only goes up."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (must not be negative)."""
        assert amount >= 0, amount
        self.value += amount


class Counter(_Parent[CounterChild]):
    """A count that only goes up (`_total`-style; Fabric's names keep no suffix)."""

    type: MetricType = "counter"

    def inc(self, amount: float = 1) -> None:
        """Add to the sample of a counter without labels."""
        self._children[()].inc(amount)

    def collect(self) -> MetricFamily:
        samples = tuple(
            Sample("", self._pairs(values), child.value)
            for values, child in self._items()
        )
        return MetricFamily(self.name, self.help, self.type, samples)

    def _new_child(self) -> CounterChild:
        return CounterChild()


class GaugeChild:
    """One gauge sample; goes up and down."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


class Gauge(_Parent[GaugeChild]):
    """A value that goes up and down."""

    type: MetricType = "gauge"

    def set(self, value: float) -> None:
        """Set the sample of a gauge without labels."""
        self._children[()].set(value)

    def collect(self) -> MetricFamily:
        samples = tuple(
            Sample("", self._pairs(values), child.value)
            for values, child in self._items()
        )
        return MetricFamily(self.name, self.help, self.type, samples)

    def _new_child(self) -> GaugeChild:
        return GaugeChild()


class HistogramChild:
    """One histogram: a count per bucket (not cumulative) and the sum of observations."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation in the first bucket whose upper bound is >= value."""
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.sum += value


class Histogram(_Parent[HistogramChild]):
    """Observations (durations, sizes) counted in buckets with cumulative `le` bounds."""

    type: MetricType = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str],
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        bounds = tuple(float(bound) for bound in buckets if bound != math.inf)
        if any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"histogram {name}: buckets must increase: {buckets}")
        if "le" in labels:
            raise ValueError(f"histogram {name}: 'le' is a reserved label name")
        self._bounds = bounds
        super().__init__(name, help, labels)

    def observe(self, value: float) -> None:
        """Observe into a histogram without labels."""
        self._children[()].observe(value)

    def collect(self) -> MetricFamily:
        samples: list[Sample] = []
        for values, child in self._items():
            samples.extend(self._child_samples(values, child))
        return MetricFamily(self.name, self.help, self.type, tuple(samples))

    def _child_samples(
        self, values: LabelValues, child: HistogramChild
    ) -> list[Sample]:
        pairs = self._pairs(values)
        counts = list(child.counts)  # one snapshot: the buckets and count agree
        samples = []
        cumulative = 0
        for bound, count in zip((*self._bounds, math.inf), counts, strict=True):
            cumulative += count
            le = (*pairs, ("le", _format_value(bound)))
            samples.append(Sample("_bucket", le, cumulative))
        samples.append(Sample("_sum", pairs, child.sum))
        samples.append(Sample("_count", pairs, cumulative))
        return samples

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._bounds)


class CallbackGauge(_Metric):
    """A gauge read at scrape time: `read()` maps label values to the current value."""

    type: MetricType = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[LabelValues, float]],
    ) -> None:
        super().__init__(name, help, labels)
        self._read = read

    def collect(self) -> MetricFamily:
        samples = []
        for values, value in sorted(self._read().items()):
            if len(values) != len(self.label_names):
                raise ValueError(f"metric {self.name}: bad label values {values!r}")
            pairs = tuple(zip(self.label_names, values, strict=True))
            samples.append(Sample("", pairs, value))
        return MetricFamily(self.name, self.help, self.type, tuple(samples))


_M = TypeVar("_M", bound=_Metric)


class Registry:
    """The metrics of one process (`REGISTRY`) or of one node (scrape-time gauges)."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help: str, *, labels: Sequence[str] = ()) -> Counter:
        return self.register(Counter(name, help, labels))

    def gauge(self, name: str, help: str, *, labels: Sequence[str] = ()) -> Gauge:
        return self.register(Gauge(name, help, labels))

    def histogram(
        self,
        name: str,
        help: str,
        *,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        return self.register(Histogram(name, help, labels, buckets=buckets))

    def callback_gauge(
        self,
        name: str,
        help: str,
        read: Callable[[], Mapping[LabelValues, float]],
        *,
        labels: Sequence[str] = (),
    ) -> CallbackGauge:
        return self.register(CallbackGauge(name, help, labels, read))

    def register(self, metric: _M) -> _M:
        """Add a metric.

        Raises:
            ValueError: a metric of that name is registered already.
        """
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is registered already")
            self._metrics[metric.name] = metric
        return metric

    def collect(self) -> list[MetricFamily]:
        """Every metric's samples, by name."""
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda metric: metric.name)
        return [metric.collect() for metric in metrics]


REGISTRY = Registry()
"""The process's registry: the metrics modules define at import time."""


def render(families: Iterable[MetricFamily]) -> str:
    """The Prometheus text exposition (format 0.0.4) of these families.

    A family with label names but no sample yet is left out, as the Prometheus
    client libraries do.

    Raises:
        ValueError: two families have the same name.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for family in families:
        if family.name in seen:
            raise ValueError(f"metric {family.name} is collected twice")
        seen.add(family.name)
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        lines.extend(_sample_line(family.name, sample) for sample in family.samples)
    return "".join(line + "\n" for line in lines)


def _sample_line(name: str, sample: Sample) -> str:
    value = _format_value(sample.value)
    if not sample.labels:
        return f"{name}{sample.suffix} {value}"
    labels = ",".join(f'{key}="{_escape_label(text)}"' for key, text in sample.labels)
    return f"{name}{sample.suffix}{{{labels}}} {value}"


def _format_value(value: float) -> str:
    """Go's shortest float form: integers without ".0", +Inf, -Inf, NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _check_names(name: str, labels: Sequence[str]) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid metric name {name!r}")
    for label in labels:
        if not _LABEL.fullmatch(label) or label.startswith("__"):
            raise ValueError(f"metric {name}: invalid label name {label!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"metric {name}: duplicate label names {tuple(labels)}")
