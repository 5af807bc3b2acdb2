"""`medledger bench floor`: the arithmetic on given unit costs, the counts table, the
contracts' stub calls against it, and one tiny real measurement."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping

import pytest

from chaincode.shim import messages
from chaincode.testing import MockPeer, MockRequester, make_identity
from network.bench_floor import (
    CLIENT,
    TARGETS,
    WORKLOADS,
    FloorBenchError,
    FloorOptions,
    GrpcCost,
    Kind,
    UnitCosts,
    ceiling,
    floor_report,
    grpc_costs,
    human_line,
    run_floor_bench,
    stub_calls,
    unit_cost,
    workload_floor,
    write_batched,
)
from network.cli import build_parser

_SUBMITTED = ("create", "transfer", "private")

# Round unit costs: a unary call 100 µs caller + 200 µs callee, a stream pair 10 + 20.
FLAT = UnitCosts(
    unary={512: GrpcCost(100.0, 200.0)},
    stream={512: GrpcCost(10.0, 20.0)},
    sign_us=1.0,
    verify_us=2.0,
    sha256_us=0.5,
)


def test_a_unit_cost_is_interpolated_between_sizes_and_flat_beyond_them() -> None:
    costs = {1000: GrpcCost(100.0, 200.0), 3000: GrpcCost(300.0, 400.0)}

    assert unit_cost(costs, 2000) == GrpcCost(200.0, 300.0)
    assert unit_cost(costs, 1000) == GrpcCost(100.0, 200.0)
    assert unit_cost(costs, 10) == GrpcCost(100.0, 200.0)
    assert unit_cost(costs, 9000) == GrpcCost(300.0, 400.0)


def test_grpc_costs_pick_each_side_over_the_runs() -> None:
    runs = {
        512: {
            "unary": [
                {"client_us": 100.0, "server_us": 250.0, "total_us": 350.0},
                {"client_us": 130.0, "server_us": 200.0, "total_us": 330.0},
                {"client_us": 110.0, "server_us": 300.0, "total_us": 410.0},
            ]
        }
    }

    assert grpc_costs(runs, "unary", min) == {512: GrpcCost(100.0, 200.0)}
    assert grpc_costs(runs, "unary", statistics.median) == {512: GrpcCost(110.0, 250.0)}


def test_a_unit_cost_needs_a_measurement() -> None:
    with pytest.raises(FloorBenchError):
        unit_cost({}, 512)


def test_the_create_floor_is_the_hand_count_times_the_unit_costs() -> None:
    floor = workload_floor(WORKLOADS["create"], FLAT)

    # Endorse, Submit, CommitStatus and one remote ProcessProposal: 4 unary calls.
    # TRANSACTION/COMPLETED x2, (GET_STATE + 2 PUT_STATE) x2, one Broadcast: 9 pairs.
    # Signs: proposal, envelope, CommitStatus request, 2 responses. Verifies: 2
    # proposals, CommitStatus, orderer, 2 peers x (creator + 2 endorsements).
    # SHA-256: 2 proposal hashes, orderer and 2 peers' data hashes.
    assert floor["by_kind_us"] == {
        "unary": 4 * 300.0,
        "stream": 9 * 30.0,
        "sign": 5 * 1.0,
        "verify": 10 * 2.0,
        "sha256": 5 * 0.5,
    }
    assert floor["us_per_tx"] == 1497.5
    assert floor["by_process_us"][CLIENT] == 3 * 100.0 + 3 * 1.0
    assert floor["us_per_tx_without_client"] == 1497.5 - 303.0
    assert sum(item["us"] for item in floor["steps"]) == pytest.approx(1497.5)


def test_the_read_floor_has_no_gateway_to_peer_call() -> None:
    floor = workload_floor(WORKLOADS["read"], FLAT)
    ours = workload_floor(WORKLOADS["read"], FLAT, use_ours=True)

    # Evaluate; TRANSACTION/COMPLETED + GET_STATE; client and endorser sign, endorser
    # verifies and hashes the proposal.
    assert floor["us_per_tx"] == 300.0 + 2 * 30.0 + 2 * 1.0 + 2.0 + 0.5
    # medledger's gateway is its own process: one ProcessProposal more.
    assert ours["us_per_tx"] == floor["us_per_tx"] + 300.0


def test_write_batching_leaves_one_write_pair_per_endorsement() -> None:
    batched = write_batched(WORKLOADS["transfer"])

    assert stub_calls(batched) == {"GET_STATE": 1, "WRITE_BATCH_STATE": 1}
    assert workload_floor(batched, FLAT)["by_kind_us"]["stream"] == (
        (2 + 2 * 2 + 1) * 30.0
    )
    assert write_batched(WORKLOADS["read"]) == WORKLOADS["read"]


def test_the_ceiling_is_the_cores_divided_by_the_floor() -> None:
    assert ceiling(1000.0, 2) == 2000.0


def test_the_report_compares_each_ceiling_with_its_target() -> None:
    report = floor_report(
        FLAT,
        cores=2,
        targets={"create": 1000, "transfer": 2000, "read": 3000, "private": 800},
    )

    create = report["create"]
    assert create["budget_us_per_tx"] == 2000.0
    assert create["ceiling_per_s"] == pytest.approx(2e6 / 1497.5, abs=0.1)
    assert create["reachable"] is True
    assert create["ceiling_per_s_messages_only"] == pytest.approx(
        2e6 / (4 * 300.0 + 9 * 30.0), abs=0.1
    )
    assert report["transfer"]["reachable"] is False
    assert create["our_extra_us_per_tx"] == 300.0
    assert [extra["step"] for extra in create["our_extra_steps"]] == [
        "gateway -> peer ProcessProposal"
    ]
    assert "out of reach" in human_line("transfer", report["transfer"], 2)


def test_every_workload_has_a_target_and_the_steps_its_protocol_needs() -> None:
    assert set(WORKLOADS) == set(TARGETS)
    for name, steps in WORKLOADS.items():
        names = {step.name for step in steps}
        assert "peer -> chaincode TRANSACTION/COMPLETED" in names
        assert "client: sign proposal" in names
        assert "peer: sign proposal response" in names
        assert stub_calls(steps).get("GET_STATE") == 1, name
        for step in steps:
            assert step.fact, step.name
            assert 0 <= step.count <= step.ours, step.name
            assert (step.callee != "") == (step.kind in (Kind.UNARY, Kind.STREAM))
    for name in _SUBMITTED:
        names = {step.name for step in WORKLOADS[name]}
        assert {
            "client -> gateway Endorse",
            "client -> gateway Submit",
            "client -> gateway CommitStatus",
            "gateway -> orderer Broadcast envelope/response",
            "peers: verify endorsements",
        } <= names
    assert "client -> gateway Evaluate" in {s.name for s in WORKLOADS["read"]}


def _count_stub_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    seen: Counter[str] = Counter()
    original = MockRequester.request

    async def counting(self: MockRequester, message_type: int, payload: bytes) -> bytes:
        seen[messages.type_name(message_type)] += 1
        return await original(self, message_type, payload)

    monkeypatch.setattr(MockRequester, "request", counting)
    return seen


def _by_type(counted: Mapping[str, int]) -> dict[str, int]:
    return {name: count for name, count in counted.items() if count}


async def test_the_asset_contract_makes_the_stub_calls_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chaincode.contracts.asset import contracts

    peer = MockPeer(contracts)
    created = await peer.submit("CreateAsset", "pool-1", "blue", "5", "pool", "100")
    assert created.response.status == 200, created.response.message
    seen = _count_stub_calls(monkeypatch)

    await peer.submit("CreateAsset", "bench-1", "blue", "5", "bench", "100")
    assert _by_type(seen) == stub_calls(WORKLOADS["create"])
    seen.clear()
    await peer.submit("TransferAsset", "pool-1", "owner-1")
    assert _by_type(seen) == stub_calls(WORKLOADS["transfer"])
    seen.clear()
    await peer.evaluate("ReadAsset", "pool-1")
    assert _by_type(seen) == stub_calls(WORKLOADS["read"])


async def test_the_ehr_contract_makes_the_stub_calls_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chaincode.contracts.ehr import contracts

    clinician = make_identity("HospitalAMSP", attributes={"role": "clinician"})
    peer = MockPeer(contracts, creator=clinician)
    seen = _count_stub_calls(monkeypatch)

    result = await peer.submit(
        "CreateDiagnosis",
        "record-1",
        "HospitalAMSP",
        "P0001",
        transient={"diagnosis": b"stable angina"},
    )

    assert result.response.status == 200, result.response.message
    assert _by_type(seen) == stub_calls(WORKLOADS["private"])


def test_the_command_is_registered_under_bench() -> None:
    args = build_parser().parse_args(
        ["bench", "floor", "--sizes", "512", "--repeat", "1"]
    )

    assert args.sizes == "512"
    assert args.repeat == 1
    assert callable(args.handler)


def test_unusable_options_fail_before_any_process_starts() -> None:
    with pytest.raises(FloorBenchError):
        run_floor_bench(FloorOptions(sizes=()))
    with pytest.raises(FloorBenchError):
        run_floor_bench(FloorOptions(repeat=0))


def test_a_tiny_real_measurement_prices_every_workload() -> None:
    report = run_floor_bench(
        FloorOptions(
            sizes=(512,), messages=40, concurrency=4, repeat=1, crypto_iterations=50
        )
    )

    units = report["unit_costs"]
    assert units["unary_us"]["512"]["total_us"] > 0
    assert units["stream_pair_us"]["512"]["total_us"] > 0
    assert units["ecdsa_p256_sign_us"] > 0
    assert units["ecdsa_p256_verify_us"] > 0
    assert report["grpc_experiments"]
    assert report["tls"] is True
    assert set(report["workloads"]) == set(TARGETS)
    for entry in report["workloads"].values():
        assert entry["floor_us_per_tx"] > 0
        assert entry["ceiling_per_s"] > 0
    # With one run per size the cheapest run is the median.
    assert (
        report["best_runs"]["create"]["floor_us_per_tx"]
        == (report["workloads"]["create"]["floor_us_per_tx"])
    )
