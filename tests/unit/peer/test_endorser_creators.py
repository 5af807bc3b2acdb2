"""The endorser remembers validated creators and their `peer/Propose` check.

Method: an `Endorser` over a fake channel (real MSPs from the example's genesis block,
a counting ACL, no chaincode: the definition lookup fails, so every accepted proposal
ends as a status-500 response after the checks). Counting MSP validations and ACL
checks shows what is skipped; the signature is checked on every proposal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from common.channelconfig import ChannelConfig
from common.msp import Identity, MspManager, SigningIdentity
from common.protoutil import create_proposal, sign_proposal
from peer.endorser import Endorser
from peer.errors import AccessDenied, ChaincodeError
from tests.support.peer import CHANNEL, HOSPITAL_A, build_peer_material


class CountingMsps:
    """An MSP manager that counts `validate` calls."""

    def __init__(self, inner: MspManager) -> None:
        self.inner = inner
        self.validations = 0

    def deserialize_identity(self, serialized: bytes) -> Identity:
        return self.inner.deserialize_identity(serialized)

    def validate(self, identity: Identity) -> None:
        self.validations += 1
        self.inner.validate(identity)


@dataclass
class FakeConfig:
    msp_manager: Any


@dataclass
class FakeSimulator:
    def done(self) -> None:
        pass


@dataclass
class FakeChannel:
    config: FakeConfig
    channel_id: str = CHANNEL
    acl_checks: int = 0
    seen: set[str] = field(default_factory=set)

    def has_tx(self, tx_id: str) -> bool:
        return tx_id in self.seen

    def check_acl(self, resource: str, identity: Identity) -> None:
        self.acl_checks += 1

    def open_simulator(self, tx_id: str) -> FakeSimulator:
        return FakeSimulator()


class NoDefinitions:
    def endorsement_info(self, channel_id: str, name: str, simulator: object) -> Any:
        raise ChaincodeError(f"chaincode {name} not found")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[MspManager, SigningIdentity]:
    material = build_peer_material(tmp_path_factory.mktemp("creators"))
    msps = ChannelConfig.from_block(material.genesis).msp_manager
    return msps, material.user(HOSPITAL_A, "dr-lee")


def signed(client: SigningIdentity, *, bad_signature: bool = False) -> bytes:
    created = create_proposal(
        channel_id=CHANNEL,
        chaincode_name="asset",
        args=[b"Read", b"a1"],
        creator=client.serialized,
    )
    sign = (lambda _: client.sign(b"something else")) if bad_signature else client.sign
    return sign_proposal(created.proposal_bytes, sign).SerializeToString()


def endorser_on(channel: FakeChannel, msps: MspManager) -> Endorser:
    return Endorser(
        channels=lambda _: cast(Any, channel),
        local_msp=msps,
        signer=cast(Any, None),
        runner=cast(Any, None),
        definitions=NoDefinitions(),
        system_chaincodes={},
    )


async def test_a_known_creator_is_validated_and_acl_checked_once(
    world: tuple[MspManager, SigningIdentity],
) -> None:
    msps, client = world
    counting = CountingMsps(msps)
    channel = FakeChannel(FakeConfig(counting))
    endorser = endorser_on(channel, msps)
    for _ in range(3):
        response = await endorser.process_proposal(signed(client))
        assert response.response.status == 500
        assert "not found" in response.response.message
    assert (counting.validations, channel.acl_checks) == (1, 1)


async def test_the_signature_is_checked_every_time(
    world: tuple[MspManager, SigningIdentity],
) -> None:
    msps, client = world
    channel = FakeChannel(FakeConfig(CountingMsps(msps)))
    endorser = endorser_on(channel, msps)
    await endorser.process_proposal(signed(client))
    with pytest.raises(AccessDenied, match="creator org \\[HospitalAMSP\\]"):
        await endorser.process_proposal(signed(client, bad_signature=True))


async def test_a_new_config_validates_and_checks_again(
    world: tuple[MspManager, SigningIdentity],
) -> None:
    msps, client = world
    first = CountingMsps(msps)
    channel = FakeChannel(FakeConfig(first))
    endorser = endorser_on(channel, msps)
    await endorser.process_proposal(signed(client))
    second = CountingMsps(msps)
    channel.config = FakeConfig(second)
    await endorser.process_proposal(signed(client))
    assert (first.validations, second.validations, channel.acl_checks) == (1, 1, 2)
