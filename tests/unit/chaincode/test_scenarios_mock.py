"""The SDK scenarios on `chaincode.testing.MockPeer` (no network, no streams)."""

from __future__ import annotations

import pytest

from chaincode import ContractChaincode
from chaincode.testing import MockPeer
from tests.unit.chaincode.scenario_contract import ScenarioContract
from tests.unit.chaincode.scenarios import SCENARIOS, Scenario


@pytest.fixture
def mock_peer() -> MockPeer:
    chaincode = ContractChaincode([ScenarioContract()])
    return MockPeer({"scenario": chaincode, "partner": chaincode}, batch_size=2)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
async def test_scenario(scenario: Scenario, mock_peer: MockPeer) -> None:
    """Each scenario passes on the in-memory peer, through the shim's execute path."""
    await scenario(mock_peer)
