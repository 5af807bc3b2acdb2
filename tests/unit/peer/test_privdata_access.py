"""memberOnlyRead / memberOnlyWrite for a proposal's creator (`peer.privdata.access`).

Method: the hospital example's MSPs (genesis of medical-records) judge clinicians of
A and C; collection configs come from a dict reader holding a committed definition
with AB (A and B, member-only read and write), ABread (member-only read) and ABopen
(neither). The TransactionContext check is exercised as the chaincode requests use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from common.channelconfig import ChannelConfig
from common.policies import from_string
from peer.chaincode.context import TransactionContext
from peer.errors import CollectionError
from peer.ledger.statedb import Version, VersionedValue
from peer.lifecycle import ChaincodeDefinition, definition_writes
from peer.lifecycle.definitions import signature_endorsement_policy
from peer.privdata.access import AccessChannel, CollectionAccessFactory
from protos.peer import collection_pb2
from tests.support.peer import (
    HOSPITAL_A,
    HOSPITAL_B,
    HOSPITAL_C,
    PeerMaterial,
    build_peer_material,
)

CC = "records"
CHANNEL = "medical-records"


def _collection(
    name: str, *, read: bool, write: bool
) -> collection_pb2.CollectionConfig:
    config = collection_pb2.CollectionConfig()
    static = config.static_collection_config
    static.name = name
    static.member_orgs_policy.signature_policy.CopyFrom(
        from_string(f"OR('{HOSPITAL_A}.member', '{HOSPITAL_B}.member')")
    )
    static.member_only_read = read
    static.member_only_write = write
    return config


class DictReader:
    def __init__(self, sequence: int) -> None:
        package = collection_pb2.CollectionConfigPackage(
            config=[
                _collection("AB", read=True, write=True),
                _collection("ABread", read=True, write=False),
                _collection("ABopen", read=False, write=False),
            ]
        )
        definition = ChaincodeDefinition(
            name=CC,
            version="1.0",
            sequence=sequence,
            endorsement_policy=signature_endorsement_policy(
                from_string(f"OR('{HOSPITAL_A}.peer')")
            ),
            collections=package.SerializeToString(),
        )
        self.values = dict(definition_writes(definition))
        self.reads = 0

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        self.reads += 1
        value = self.values.get(key) if ns == "_lifecycle" else None
        return None if value is None else VersionedValue(value, Version(1, 0), {})


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("access-material"))


@pytest.fixture(scope="module")
def config(material: PeerMaterial) -> ChannelConfig:
    return ChannelConfig.from_block(material.genesis)


@dataclass(frozen=True)
class Proposal:
    """The two fields of a ParsedProposal the access factory reads."""

    creator: bytes
    channel_id: str = CHANNEL


def _proposal(material: PeerMaterial, mspid: str, user: str) -> Any:
    return Proposal(material.user(mspid, user).serialized)


def _factory(config: ChannelConfig, reader: DictReader) -> CollectionAccessFactory:
    channel = AccessChannel(msps=config.msp_manager, reader=reader)
    return CollectionAccessFactory(lambda channel_id: channel)


def test_members_read_and_write_non_members_only_what_the_collection_allows(
    material: PeerMaterial, config: ChannelConfig
) -> None:
    """A's clinician may do everything; C's only write ABread and use ABopen."""
    factory = _factory(config, DictReader(1))
    lee = factory(_proposal(material, HOSPITAL_A, "dr-lee"))
    svensson = factory(_proposal(material, HOSPITAL_C, "dr-svensson"))
    assert lee is not None
    assert svensson is not None

    assert [lee.permissions(CC, c) for c in ("AB", "ABread", "ABopen")] == [
        (True, True),
        (True, True),
        (True, True),
    ]
    assert [svensson.permissions(CC, c) for c in ("AB", "ABread", "ABopen")] == [
        (False, False),
        (False, True),
        (True, True),
    ]
    assert svensson.permissions(CC, f"_implicit_org_{HOSPITAL_A}") == (True, True)
    with pytest.raises(CollectionError, match="collection nope is not defined"):
        svensson.permissions(CC, "nope")


def test_configs_are_cached_until_the_definition_sequence_changes(
    material: PeerMaterial, config: ChannelConfig
) -> None:
    """A second proposal reads only the sequence; a new sequence reads the definition."""
    reader = DictReader(1)
    factory = _factory(config, reader)
    proposal = _proposal(material, HOSPITAL_A, "dr-lee")
    access = factory(proposal)
    assert access is not None
    access.permissions(CC, "AB")
    reads = reader.reads
    again = factory(proposal)
    assert again is not None
    again.permissions(CC, "AB")
    assert reader.reads == reads + 1

    reader.values = DictReader(2).values
    upgraded = factory(proposal)
    assert upgraded is not None
    upgraded.permissions(CC, "AB")
    assert reader.reads > reads + 2


def test_the_transaction_context_refuses_with_a_clear_message(
    material: PeerMaterial, config: ChannelConfig
) -> None:
    """The chaincode request path: C's read and write of AB are refused by name."""
    access = _factory(config, DictReader(1))(
        _proposal(material, HOSPITAL_C, "dr-svensson")
    )
    context = TransactionContext(
        channel_id=CHANNEL,
        tx_id="t1",
        namespace=CC,
        simulator=None,  # type: ignore[arg-type]
        collection_access=access,
    )
    with pytest.raises(CollectionError, match=r"may not read private data .* AB"):
        context.check_private_access("AB", write=False)
    with pytest.raises(CollectionError, match=r"may not write private data .* AB"):
        context.check_private_access("AB", write=True)
    context.check_private_access("ABread", write=True)


def test_an_unknown_channel_has_no_access_rules() -> None:
    factory = CollectionAccessFactory(lambda channel_id: None)
    proposal: Any = Proposal(b"", channel_id="other")
    assert factory(proposal) is None
