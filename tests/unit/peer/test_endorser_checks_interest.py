"""The ChaincodeInterest an endorser returns: which policies the transaction needs.

Method: read-write sets built with `RwSetBuilder` (as the simulator does), each case
one shape of simulation; the interest must name what Fabric's endorser names.
"""

from __future__ import annotations

from common.policies import from_string
from peer.interest import build_chaincode_interest
from peer.ledger.statedb import Version
from peer.simulator import RwSetBuilder, SimulationResults

KEY_POLICY = from_string("AND('HospitalAMSP.peer')").SerializeToString()


def interest_of(
    builder: RwSetBuilder,
    *,
    private_reads: frozenset[tuple[str, str]] = frozenset(),
    metadata: dict[tuple[str, str, str], dict[str, bytes]] | None = None,
) -> list[tuple[str, tuple[str, ...], bool, int, bool]]:
    public, private = builder.build()
    results = SimulationResults(
        public_rwset=public,
        private_rwset=private,
        private_reads=private_reads,
        writeset_metadata=metadata or {},
    )
    return [
        (
            call.name,
            tuple(call.collection_names),
            call.no_private_reads,
            len(call.key_policies),
            call.disregard_namespace_policy,
        )
        for call in build_chaincode_interest(results).chaincodes
    ]


def test_a_public_read_and_write_needs_the_chaincode_policy() -> None:
    builder = RwSetBuilder()
    builder.add_read("asset", "a1", Version(3, 0))
    builder.add_write("asset", "a1", b"v")
    assert interest_of(builder) == [("asset", (), False, 0, False)]


def test_a_read_only_namespace_still_needs_its_policy() -> None:
    builder = RwSetBuilder()
    builder.add_read("asset", "a1", None)
    assert interest_of(builder) == [("asset", (), False, 0, False)]


def test_system_namespaces_are_left_out() -> None:
    builder = RwSetBuilder()
    builder.add_read("_lifecycle", "namespaces/fields/asset/Sequence", Version(1, 0))
    builder.add_write("asset", "a1", b"v")
    assert [name for name, *_ in interest_of(builder)] == ["asset"]


def test_a_private_write_names_its_collection_without_private_reads() -> None:
    builder = RwSetBuilder()
    builder.add_private_write("records", "diagnoses", "p17", b"secret")
    assert interest_of(builder) == [
        ("records", ("diagnoses",), True, 0, False),
    ]


def test_a_private_read_names_its_collection_with_private_reads() -> None:
    builder = RwSetBuilder()
    builder.add_read("records", "index", None)
    calls = interest_of(builder, private_reads=frozenset({("records", "diagnoses")}))
    assert calls == [
        ("records", (), False, 0, False),
        ("records", ("diagnoses",), False, 0, False),
    ]


def test_key_level_policies_replace_the_namespace_policy_when_every_key_has_one() -> (
    None
):
    builder = RwSetBuilder()
    builder.add_write("asset", "a1", b"v")
    metadata = {("asset", "", "a1"): {"VALIDATION_PARAMETER": KEY_POLICY}}
    assert interest_of(builder, metadata=metadata) == [("asset", (), False, 1, True)]


def test_a_key_without_a_key_level_policy_keeps_the_namespace_policy() -> None:
    builder = RwSetBuilder()
    builder.add_write("asset", "a1", b"v")
    builder.add_write("asset", "a2", b"v")
    metadata = {("asset", "", "a1"): {"VALIDATION_PARAMETER": KEY_POLICY}}
    assert interest_of(builder, metadata=metadata) == [("asset", (), False, 1, False)]


def test_plain_namespaces_are_sorted_once_each() -> None:
    builder = RwSetBuilder()
    builder.add_write("zeta", "z", b"v")
    builder.add_read("alpha", "a", None)
    builder.add_read("_lifecycle", "namespaces/fields/zeta/Sequence", Version(1, 0))
    assert interest_of(builder) == [
        ("alpha", (), False, 0, False),
        ("zeta", (), False, 0, False),
    ]
    assert interest_of(builder) == interest_of(builder)
