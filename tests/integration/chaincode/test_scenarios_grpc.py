"""The SDK scenarios over the real shim and gRPC, in dial mode and in server mode."""

from __future__ import annotations

import pytest

from tests.integration.chaincode.harness import MODES, scenario_network
from tests.unit.chaincode.scenarios import SCENARIOS, Scenario


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
async def test_scenario(scenario: Scenario, mode: str) -> None:
    """Each scenario passes with the chaincode behind a real stream to the fake peer."""
    async with scenario_network(mode) as peer:
        await scenario(peer)
