"""Rich queries on private data through the shim against `chaincode.testing.MockPeer`."""

from __future__ import annotations

import json

import pytest

from chaincode import ContractChaincode
from chaincode.testing import MockPeer
from tests.unit.chaincode.pvtquery_contract import (
    WARDS,
    PatientQueries,
    admit_patients,
    private_rich_query,
)
from tests.unit.chaincode.scenarios import ok


@pytest.fixture
def mock_peer() -> MockPeer:
    return MockPeer({"wards": ContractChaincode([PatientQueries()])}, batch_size=2)


async def test_private_rich_query_scenario(mock_peer: MockPeer) -> None:
    await private_rich_query(mock_peer)


async def test_another_collection_and_public_state_do_not_match(
    mock_peer: MockPeer,
) -> None:
    await admit_patients(mock_peer)
    everyone = json.dumps({"selector": {"docType": "patient"}})

    in_wards = ok(await mock_peer.evaluate("FindPatients", WARDS, everyone)).json()
    elsewhere = ok(await mock_peer.evaluate("FindPatients", "other", everyone)).json()

    assert isinstance(in_wards, list)
    assert [key for key, _ in in_wards] == ["patient1", "patient2", "patient3"]
    assert elsewhere == []
