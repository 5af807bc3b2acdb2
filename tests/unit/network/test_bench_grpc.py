"""`medledger bench grpc`: configuration parsing, and one tiny run through two processes."""

from __future__ import annotations

import pytest

from network.bench_grpc import (
    CONFIGS,
    BenchConfig,
    GrpcBenchError,
    GrpcBenchOptions,
    parse_config,
    run_grpc_bench,
)


def test_a_named_configuration_is_the_table_entry() -> None:
    assert parse_config("legacy-io") is CONFIGS["legacy-io"]


def test_ad_hoc_configurations_combine_environment_and_arguments() -> None:
    config = parse_config(
        "env:GRPC_POLL_STRATEGY=poll+opt:grpc.http2.bdp_probe=0"
        "+opt:grpc.optimization_target=latency"
    )

    assert config == BenchConfig(
        env={"GRPC_POLL_STRATEGY": "poll"},
        options=(
            ("grpc.http2.bdp_probe", 0),
            ("grpc.optimization_target", "latency"),
        ),
    )


@pytest.mark.parametrize("name", ["nonsense", "env:NOVALUE", "opt:=1", "tls:x=1"])
def test_an_unknown_configuration_is_refused(name: str) -> None:
    with pytest.raises(GrpcBenchError, match="unknown configuration"):
        parse_config(name)


def test_an_unknown_configuration_fails_before_any_process_starts() -> None:
    with pytest.raises(GrpcBenchError):
        run_grpc_bench(GrpcBenchOptions(configs=("current", "nonsense")))


@pytest.mark.slow
def test_a_tiny_run_reports_cpu_per_message_for_both_patterns() -> None:
    report = run_grpc_bench(
        GrpcBenchOptions(configs=("current", "unix"), messages=40, concurrency=4)
    )

    assert set(report["results"]) == {"current", "unix"}
    for result in report["results"].values():
        for pattern in ("unary", "stream"):
            figures = result[pattern]
            assert figures["messages_per_s"] > 0
            assert figures["total_us"] == pytest.approx(
                figures["client_us"] + figures["server_us"], abs=0.2
            )
