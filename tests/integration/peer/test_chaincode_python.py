"""Our Python chaincode SDK against the real peer side: launched processes, real ledger.

The peer's `ChaincodeLauncher` starts `python -m chaincode serve` twice (the
scenario contract as "scenario" and as "partner"), the processes dial the
Register service, and the SDK's own scenarios run through the real handler,
simulator and SQLite state. A killed chaincode is restarted and serves again.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chaincode.testing import make_identity
from peer.chaincode.execute import ChaincodeInfo
from peer.chaincode.launcher import python_launch_spec
from tests.integration.peer.chaincode_fixtures import LedgerPeer
from tests.unit.chaincode import scenarios
from tests.unit.chaincode.scenarios import SCENARIOS, ok

ROOT = str(Path(__file__).resolve().parents[3])
CONTRACT = "tests.unit.chaincode.scenario_contract:ScenarioContract"
PACKAGES = {"scenario": "scenario_1:aa", "partner": "partner_1:bb"}


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[LedgerPeer]:
    chaincodes = {
        name: ChaincodeInfo(package, "1") for name, package in PACKAGES.items()
    }
    side = await LedgerPeer(tmp_path / "ledger.sqlite", chaincodes).start()
    for package in PACKAGES.values():
        side.launcher.launch(
            python_launch_spec(
                package, side.address, [CONTRACT], cwd=ROOT, msp_id="Org1MSP"
            )
        )
    try:
        yield side
    finally:
        await side.stop()


# The init case of `transient_and_private_data` needs a definition that requires init;
# it has its own test below.
RUNNABLE = [s for s in SCENARIOS if s is not scenarios.transient_and_private_data]


async def test_sdk_scenarios(peer: LedgerPeer) -> None:
    """Every SDK scenario passes through the real chaincode support (one launch)."""
    failures: list[str] = []
    for scenario in RUNNABLE:
        try:
            await scenario(peer)
        except AssertionError as error:
            failures.append(f"{scenario.__name__}: {error!r}")
    assert failures == []


async def test_private_data_and_init(peer: LedgerPeer) -> None:
    transient = {"value": b"diagnosis: flu"}
    ok(await peer.submit("PutPrivate", "patient1", transient=transient))
    private = ok(await peer.evaluate("GetPrivate", "patient1")).json()
    assert private == {
        "value": "diagnosis: flu",
        "hash": hashlib.sha256(b"diagnosis: flu").hexdigest(),
    }
    ok(await peer.submit("DeletePrivate", "patient1", "true"))
    assert ok(await peer.evaluate("PrivateRange")).json() == []
    peer.lifecycle.chaincodes["scenario"] = ChaincodeInfo(
        PACKAGES["scenario"], "1", enforce_init=True
    )
    not_yet = await peer.submit("Put", "k", "v")
    assert (not_yet.status, "must call as init first" in not_yet.message) == (500, True)
    in_init = await peer.submit("PutPrivate", "p3", transient=transient, is_init=True)
    assert in_init.status == 500
    assert "Init" in in_init.message


async def test_a_killed_chaincode_is_restarted(peer: LedgerPeer) -> None:
    ok(await peer.submit("Put", "before", "1"))
    status = peer.launcher.status(PACKAGES["scenario"])
    assert status is not None
    assert status.pid is not None
    handler = peer.registry.handler(PACKAGES["scenario"])
    assert handler is not None
    os.kill(status.pid, signal.SIGKILL)
    await status.exited.wait()
    await handler.wait_closed()
    assert ok(await peer.evaluate("Get", "before")).payload == b"1"
    assert status.starts == 2
    assert status.exit_codes == [-signal.SIGKILL]


async def test_identity_reaches_the_chaincode(peer: LedgerPeer) -> None:
    nurse = make_identity("Org2MSP", "Nurse Joy", attributes={"role": "nurse"})
    who = ok(await peer.evaluate("WhoAmI", creator=nurse)).json()
    assert isinstance(who, dict)
    assert (who["mspid"], who["role"]) == ("Org2MSP", "nurse")
