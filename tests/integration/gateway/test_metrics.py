"""The gateway counts every call by method and outcome (`gateway.metrics`).

Method: the module's in-process network; a submit and an evaluate through the Python
client succeed, an evaluate of a missing asset fails; the counters and the duration
histogram of the process registry move by exactly those calls.
"""

from __future__ import annotations

import pytest

from gateway.client import GatewayError
from gateway.metrics import REQUEST_DURATION, REQUESTS_COMPLETED, REQUESTS_RECEIVED
from tests.integration.gateway.network import GatewayNetwork
from tests.support.peer import CHANNEL

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _counts() -> dict[str, float]:
    return {
        "evaluate_received": REQUESTS_RECEIVED.labels("Evaluate").value,
        "evaluate_ok": REQUESTS_COMPLETED.labels("Evaluate", "true").value,
        "evaluate_failed": REQUESTS_COMPLETED.labels("Evaluate", "false").value,
        "submit_ok": REQUESTS_COMPLETED.labels("Submit", "true").value,
        "endorse_ok": REQUESTS_COMPLETED.labels("Endorse", "true").value,
        "evaluate_timed": sum(REQUEST_DURATION.labels("Evaluate", "true").counts),
    }


async def test_calls_are_counted_by_method_and_success(network: GatewayNetwork) -> None:
    before = _counts()
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        await contract.submit("CreateAsset", "metrics-1", "red", "1", "Ana", "10")
        await contract.evaluate("ReadAsset", "metrics-1")
        with pytest.raises(GatewayError):
            await contract.evaluate("ReadAsset", "no-such-asset")
    after = _counts()
    assert {key: after[key] - before[key] for key in before} == {
        "evaluate_received": 2,
        "evaluate_ok": 1,
        "evaluate_failed": 1,
        "submit_ok": 1,
        "endorse_ok": 1,
        "evaluate_timed": 1,
    }
