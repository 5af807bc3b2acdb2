"""The Python client against a real network: orderer, peers of Hospitals A and B, gateway.

Each test drives the asset chaincode through Hospital A's gateway with
`gateway.client` and checks what Fabric's gateway would answer: results, commit codes
and block numbers, errors by phase with their gRPC codes and per-peer details, events
from a start block and resumed from a checkpoint, blocks in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from hashlib import sha256
from pathlib import Path

import grpc
import pytest

from common.protoutil import parse_serialized_identity, parse_transaction
from gateway.client import (
    CommitError,
    EndorseError,
    FileCheckpointer,
    Gateway,
    GatewayError,
    InMemoryCheckpointer,
    signer_from_msp,
)
from gateway.commit import TxStatus
from gateway.ledger import find_transaction
from protos.peer.transaction_pb2 import TxValidationCode
from tests.integration.gateway.network import SECRET, GatewayNetwork
from tests.support.peer import CHANNEL, HOSPITAL_A, HOSPITAL_B

pytestmark = pytest.mark.asyncio(loop_scope="module")

_ids = itertools.count()


def new_asset_id(prefix: str = "asset") -> str:
    return f"{prefix}-{next(_ids)}"


async def create(network: GatewayNetwork, asset_id: str, owner: str = "Tomoko") -> None:
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        await contract.submit("CreateAsset", asset_id, "blue", "5", owner, "300")


async def test_submit_then_evaluate_reads_the_committed_asset(
    network: GatewayNetwork,
) -> None:
    asset_id = new_asset_id()
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        result = await contract.submit(
            "CreateAsset", asset_id, "blue", "5", "Max", "70"
        )
        assert json.loads(result)["ID"] == asset_id
        read = json.loads(await contract.evaluate("ReadAsset", asset_id))
    assert (read["Owner"], read["AppraisedValue"]) == ("Max", 70)


async def test_submit_async_status_gives_code_and_the_block_that_holds_it(
    network: GatewayNetwork,
) -> None:
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        submitted = await contract.submit_async(
            "CreateAsset", new_asset_id(), "red", "1", "Brad", "10"
        )
        assert json.loads(submitted.result)["Owner"] == "Brad"
        status = await submitted.status()
        assert status.successful
        assert (status.code, status.code_name) == (0, "VALID")
        async for block in gateway.network(CHANNEL).filtered_block_events(
            start_block=status.block_number
        ):
            txids = [tx.txid for tx in block.filtered_transactions]
            assert submitted.transaction_id in txids
            break


async def test_endorsement_uses_both_hospitals_to_satisfy_the_majority_policy(
    network: GatewayNetwork,
) -> None:
    asset_id = new_asset_id()
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        transaction = await contract.new_proposal(
            "CreateAsset", asset_id, "green", "2", "Jin Soo", "20"
        ).endorse()
        submitted = await transaction.submit()
        status = await submitted.status()
    assert status.successful
    store = network.peer_a.channels.require(CHANNEL).ledger.block_store
    block = store.block_by_number(status.block_number)
    [parsed] = [
        parsed
        for parsed in map(parse_transaction, block.data.data)
        if parsed.tx_id == transaction.transaction_id
    ]
    endorsers = sorted(
        parse_serialized_identity(endorsement.endorser).mspid
        for endorsement in parsed.endorsements
    )
    assert endorsers == [HOSPITAL_A, HOSPITAL_B]


async def test_a_chaincode_error_on_evaluate_is_an_unknown_status_with_details(
    network: GatewayNetwork,
) -> None:
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        with pytest.raises(GatewayError) as raised:
            await contract.evaluate("ReadAsset", "no-such-asset")
    error = raised.value
    assert error.code is grpc.StatusCode.UNKNOWN
    assert str(error.args[0]).startswith(
        "evaluate call to endorser returned error: chaincode response 404, "
    )
    [detail] = error.details
    assert (detail.address, detail.mspid) == (network.address_a, HOSPITAL_A)
    assert detail.message.startswith("chaincode response 404, ")


async def test_a_chaincode_error_on_endorse_is_an_endorse_error_from_the_first_peer(
    network: GatewayNetwork,
) -> None:
    asset_id = new_asset_id()
    await create(network, asset_id)
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        with pytest.raises(EndorseError) as raised:
            await contract.submit("CreateAsset", asset_id, "blue", "5", "X", "1")
    error = raised.value
    assert error.code is grpc.StatusCode.ABORTED
    assert error.args[0] == (
        "failed to endorse transaction, see attached details for more info"
    )
    assert error.transaction_id
    [detail] = error.details
    assert detail.mspid == HOSPITAL_A
    assert (
        detail.message == f"chaincode response 409, the asset {asset_id} already exists"
    )


async def test_conflicting_updates_endorsed_together_commit_one_valid_one_mvcc(
    network: GatewayNetwork,
) -> None:
    asset_id = new_asset_id()
    await create(network, asset_id)
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        first = await contract.new_proposal("TransferAsset", asset_id, "Ann").endorse()
        second = await contract.new_proposal("TransferAsset", asset_id, "Bob").endorse()
        submitted = [await first.submit(), await second.submit()]
        statuses = [await commit.status() for commit in submitted]
    assert [s.code for s in statuses] == [
        TxValidationCode.VALID,
        TxValidationCode.MVCC_READ_CONFLICT,
    ]
    assert statuses[1].code_name == "MVCC_READ_CONFLICT"
    assert statuses[0].block_number <= statuses[1].block_number
    error = CommitError(statuses[1].transaction_id, statuses[1].code)
    assert str(error) == (
        f"Transaction {statuses[1].transaction_id} failed to commit with status code "
        "11 (MVCC_READ_CONFLICT)"
    )


async def test_endorsing_orgs_chosen_by_the_client_are_the_only_endorsers(
    network: GatewayNetwork,
) -> None:
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        with pytest.raises(CommitError) as raised:
            await contract.submit(
                "CreateAsset",
                new_asset_id(),
                "blue",
                "5",
                "Tomoko",
                "300",
                endorsing_orgs=[HOSPITAL_A],
            )
    assert raised.value.code == TxValidationCode.ENDORSEMENT_POLICY_FAILURE


async def test_offline_signing_runs_every_step_with_signatures_made_elsewhere(
    network: GatewayNetwork,
) -> None:
    signer = signer_from_msp(network.user_msp(), HOSPITAL_A)
    async with Gateway.connect(network.gateway_address, network.identity()) as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        unsigned = contract.new_proposal(
            "CreateAsset", new_asset_id(), "a", "1", "b", "2"
        )
        with pytest.raises(ValueError, match="no signer"):
            await unsigned.endorse()
        proposal = gateway.new_signed_proposal(
            unsigned.to_bytes(), signer(unsigned.message)
        )
        endorsed = await proposal.endorse()
        transaction = gateway.new_signed_transaction(
            endorsed.to_bytes(), signer(endorsed.message)
        )
        submitted = await transaction.submit()
        commit = gateway.new_signed_commit(
            submitted.to_bytes(), signer(submitted.message)
        )
        status = await commit.status()
    assert status.successful
    assert status.transaction_id == unsigned.transaction_id


async def test_chaincode_events_replay_from_block_zero_and_resume_without_duplicates(
    network: GatewayNetwork, tmp_path: Path
) -> None:
    asset_id = new_asset_id()
    await create(network, asset_id)
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        transfers = []
        for owner in ("Ann", "Ben", "Cat"):
            submitted = await contract.submit_async("TransferAsset", asset_id, owner)
            assert (await submitted.status()).successful
            transfers.append(submitted)
        mine = {submitted.transaction_id for submitted in transfers}
        events = gateway.network(CHANNEL).chaincode_events("asset", start_block=0)
        replayed = []
        async with asyncio.timeout(20):
            async for event in events:
                if event.transaction_id in mine:
                    replayed.append(event)
                if len(replayed) == 3:
                    break
        assert [json.loads(e.payload)["NewOwner"] for e in replayed] == [
            "Ann",
            "Ben",
            "Cat",
        ]
        assert {e.event_name for e in replayed} == {"TransferAsset"}
        assert [e.block_number for e in replayed] == sorted(
            e.block_number for e in replayed
        )

        checkpointer = FileCheckpointer(tmp_path / "checkpoint.json")
        checkpointer.checkpoint_transaction(
            replayed[0].block_number, replayed[0].transaction_id
        )
        resumed = FileCheckpointer(tmp_path / "checkpoint.json")
        assert resumed.block_number == replayed[0].block_number
        seen = []
        async with asyncio.timeout(20):
            async for event in gateway.network(CHANNEL).chaincode_events(
                "asset", checkpoint=resumed
            ):
                seen.append(event.transaction_id)
                resumed.checkpoint_transaction(event.block_number, event.transaction_id)
                if event.transaction_id == replayed[2].transaction_id:
                    break
    assert replayed[0].transaction_id not in seen
    assert seen[-2:] == [replayed[1].transaction_id, replayed[2].transaction_id]
    assert len(seen) == len(set(seen))


async def test_block_events_from_block_zero_are_contiguous(
    network: GatewayNetwork,
) -> None:
    height = network.peer_a.channels.require(CHANNEL).ledger.block_store.height
    async with network.connect() as gateway:
        numbers = []
        async with asyncio.timeout(20):
            async for block in gateway.network(CHANNEL).block_events(start_block=0):
                numbers.append(block.header.number)
                if len(numbers) == height:
                    break
        filtered = []
        checkpointer = InMemoryCheckpointer()
        checkpointer.checkpoint_block(0)
        async with asyncio.timeout(20):
            async for filtered_block in gateway.network(CHANNEL).filtered_block_events(
                checkpoint=checkpointer
            ):
                filtered.append(filtered_block.number)
                if len(filtered) == height - 1:
                    break
    assert numbers == list(range(height))
    assert filtered == list(range(1, height))


async def test_transient_data_reaches_the_chaincode_and_never_a_block(
    network: GatewayNetwork,
) -> None:
    secret = b"diagnosis: influenza A (H1N1)"
    key = new_asset_id("secret")
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract(SECRET)
        size = await contract.evaluate("TransientSize", transient={"secret": secret})
        submitted = await contract.submit_async(
            "StoreDigest", key, transient={"secret": secret}
        )
        status = await submitted.status()
        stored = await contract.evaluate("Digest", key)
    assert int(size) == len(secret)
    assert status.successful
    assert submitted.result.decode() == stored.decode() == sha256(secret).hexdigest()
    store = network.peer_a.channels.require(CHANNEL).ledger.block_store
    for number in range(store.height):
        assert secret not in store.block_by_number(number).SerializeToString()


async def test_chaincode_events_from_the_next_commit(network: GatewayNetwork) -> None:
    asset_id = new_asset_id()
    await create(network, asset_id)
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        events = gateway.network(CHANNEL).chaincode_events("asset")
        first = asyncio.ensure_future(anext(aiter(events)))
        await asyncio.sleep(0)
        # the stream opens at the height it sees; transfer until an event arrives
        transferred: list[str] = []
        async with asyncio.timeout(20):
            while not first.done():
                submitted = await contract.submit_async("TransferAsset", asset_id, "Z")
                assert (await submitted.status()).successful
                transferred.append(submitted.transaction_id)
                await asyncio.wait([first], timeout=0.5)
        event = first.result()
    assert event.transaction_id in transferred


async def test_the_ledger_answers_for_transactions_the_gateway_did_not_see(
    network: GatewayNetwork,
) -> None:
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        submitted = await contract.submit_async(
            "CreateAsset", new_asset_id(), "blue", "5", "Tomoko", "300"
        )
        status = await submitted.status()
    ctx = network.gateway.context
    found = await find_transaction(ctx, CHANNEL, submitted.transaction_id)
    assert found == TxStatus(status.code, status.block_number)
    assert await find_transaction(ctx, CHANNEL, "f" * 64) is None
