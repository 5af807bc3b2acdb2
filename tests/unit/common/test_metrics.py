"""common.metrics: counters, gauges, histograms and their Prometheus text rendering."""

from __future__ import annotations

import math
import threading

import pytest

from common.metrics import Registry, render


def _render(registry: Registry) -> str:
    return render(registry.collect())


def test_counter_with_labels_renders_help_type_and_one_line_per_label_set() -> None:
    """Two label sets counted apart; lines sorted by label values."""
    registry = Registry()
    counter = registry.counter(
        "ledger_transaction_count",
        "Transactions.",
        labels=("channel", "validation_code"),
    )
    counter.labels("records", "VALID").inc()
    counter.labels("records", "VALID").inc(2)
    counter.labels("records", "MVCC_READ_CONFLICT").inc()
    assert _render(registry) == (
        "# HELP ledger_transaction_count Transactions.\n"
        "# TYPE ledger_transaction_count counter\n"
        'ledger_transaction_count{channel="records",validation_code="MVCC_READ_CONFLICT"} 1\n'
        'ledger_transaction_count{channel="records",validation_code="VALID"} 3\n'
    )


def test_unlabelled_metrics_render_zero_and_labelled_ones_only_once_used() -> None:
    """A counter without labels shows 0 at once; a labelled one nothing until used."""
    registry = Registry()
    registry.counter("endorser_proposals_received", "Received.")
    registry.counter("privdata_purges_total", "Purges.", labels=("channel",))
    assert _render(registry) == (
        "# HELP endorser_proposals_received Received.\n"
        "# TYPE endorser_proposals_received counter\n"
        "endorser_proposals_received 0\n"
    )


def test_gauge_set_inc_dec_and_float_formatting() -> None:
    """Integral floats render without '.0', others shortest; infinities as +Inf/-Inf."""
    registry = Registry()
    gauge = registry.gauge("g", "A gauge.", labels=("k",))
    gauge.labels("a").set(5.0)
    gauge.labels("b").set(0.25)
    gauge.labels("c").inc(3)
    gauge.labels("c").dec()
    gauge.labels("d").set(math.inf)
    gauge.labels("e").set(-math.inf)
    gauge.labels("f").set(math.nan)
    lines = _render(registry).splitlines()[2:]
    assert lines == [
        'g{k="a"} 5',
        'g{k="b"} 0.25',
        'g{k="c"} 2',
        'g{k="d"} +Inf',
        'g{k="e"} -Inf',
        'g{k="f"} NaN',
    ]


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    """An observation equal to a bound counts in that bucket (le = less or equal)."""
    registry = Registry()
    histogram = registry.histogram(
        "blockcutter_block_fill_duration", "Fill.", buckets=(0.5, 1, 2.5)
    )
    for value in (0.1, 0.5, 2.0, 7.0):
        histogram.observe(value)
    assert _render(registry).splitlines()[2:] == [
        'blockcutter_block_fill_duration_bucket{le="0.5"} 2',
        'blockcutter_block_fill_duration_bucket{le="1"} 2',
        'blockcutter_block_fill_duration_bucket{le="2.5"} 3',
        'blockcutter_block_fill_duration_bucket{le="+Inf"} 4',
        "blockcutter_block_fill_duration_sum 9.6",
        "blockcutter_block_fill_duration_count 4",
    ]


def test_histogram_with_labels_puts_le_last() -> None:
    registry = Registry()
    histogram = registry.histogram("h", "H.", labels=("method",), buckets=(1,))
    histogram.labels("Submit").observe(3)
    assert _render(registry).splitlines()[2:] == [
        'h_bucket{method="Submit",le="1"} 0',
        'h_bucket{method="Submit",le="+Inf"} 1',
        'h_sum{method="Submit"} 3',
        'h_count{method="Submit"} 1',
    ]


def test_label_values_and_help_are_escaped() -> None:
    """Backslash, double quote and newline are escaped as the format requires."""
    registry = Registry()
    counter = registry.counter(
        "c", 'Help with \\ and\nnewline "quoted".', labels=("v",)
    )
    counter.labels('a"b\\c\nd').inc()
    assert _render(registry) == (
        '# HELP c Help with \\\\ and\\nnewline "quoted".\n'
        "# TYPE c counter\n"
        'c{v="a\\"b\\\\c\\nd"} 1\n'
    )


def test_callback_gauge_reads_at_collect_time() -> None:
    heights = {"records": 3}
    registry = Registry()
    registry.callback_gauge(
        "ledger_blockchain_height",
        "Height.",
        lambda: {(channel,): height for channel, height in heights.items()},
        labels=("channel",),
    )
    heights["records"] = 4
    heights["claims"] = 1
    assert _render(registry).splitlines()[2:] == [
        'ledger_blockchain_height{channel="claims"} 1',
        'ledger_blockchain_height{channel="records"} 4',
    ]


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("1starts_with_digit", ()),
        ("has-dash", ()),
        ("ok", ("bad-label",)),
        ("ok", ("__reserved",)),
        ("ok", ("twice", "twice")),
    ],
)
def test_invalid_names_are_refused(name: str, labels: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"invalid|duplicate"):
        Registry().counter(name, "x", labels=labels)


def test_wrong_label_count_duplicate_name_and_bad_buckets_are_refused() -> None:
    registry = Registry()
    counter = registry.counter("c", "x", labels=("a", "b"))
    with pytest.raises(ValueError, match="expected 2 label values"):
        counter.labels("only-one")
    with pytest.raises(ValueError, match="registered already"):
        registry.gauge("c", "y")
    with pytest.raises(ValueError, match="must increase"):
        registry.histogram("h", "x", buckets=(1, 1))
    with pytest.raises(ValueError, match="reserved"):
        registry.histogram("h2", "x", labels=("le",))


def test_render_refuses_the_same_family_twice() -> None:
    one, two = Registry(), Registry()
    one.counter("same", "x")
    two.counter("same", "x")
    with pytest.raises(ValueError, match="collected twice"):
        render([*one.collect(), *two.collect()])


def test_concurrent_first_use_of_a_label_set_makes_one_child() -> None:
    """Threads that create the same label set at once all count into one sample."""
    registry = Registry()
    counter = registry.counter("c", "x", labels=("k",))
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        for _ in range(1000):
            counter.labels("same").inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _render(registry).splitlines()[2:] == ['c{k="same"} 4000']
