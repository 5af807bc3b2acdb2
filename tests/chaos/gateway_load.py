"""A submit load through a gateway whose process is SIGKILLed: each transaction once.

`GatewayLink` is the client's connection to one hospital's gateway on a gRPC channel
that reconnects within half a second, and an `up` event the test clears before it
kills the gateway and sets once the gateway is READY again. `ResumingLoad` runs
workers that endorse, submit and wait for the commit status of one transaction at a
time; a phase that fails because the gateway is gone is retried, with the same signed
proposal, transaction or commit-status request (so the same transaction id), once the
gateway is up and the channel connected again. A transaction whose Submit answer was
lost may reach the orderer twice; the ledger must still hold it VALID only once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
import grpc.aio

from common.msp import SigningIdentity, load_signing_identity
from gateway.client import (
    Commit,
    Contract,
    Gateway,
    GatewayError,
    SubmitError,
    identity_from_msp,
)
from network.cryptogen import crypto_layout
from network.testing import MedledgerNetwork
from protos.gateway import gateway_pb2
from tests.chaos.peer_network import COLLECTION, TIMEOUT_S, USERS

_T = TypeVar("_T")
_RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]
_GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
_ATTEMPTS = 20
PHASES = ("endorse", "submit", "status")


class GatewayLink:
    """One connection to a hospital's gateway that survives the gateway's restarts."""

    def __init__(self, network: MedledgerNetwork, mspid: str) -> None:
        organization = network.spec.organization(mspid)
        layout = crypto_layout(network.spec, network.workdir / "crypto")
        msp = network.msp_dir(mspid, USERS[mspid])
        self.signer: SigningIdentity = load_signing_identity(msp, mspid=mspid)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=layout.organization(mspid).tlsca_cert.read_bytes()
        )
        self.channel = grpc.aio.secure_channel(
            organization.gateways[0].address, credentials, options=_RECONNECT_OPTIONS
        )
        self.gateway = Gateway.connect(
            identity=identity_from_msp(msp, mspid),
            signer=self.signer.sign,
            channel=self.channel,
        )
        self.channel_id = network.channel
        self.up = asyncio.Event()
        self.up.set()

    def contract(self, chaincode: str) -> Contract:
        return self.gateway.network(self.channel_id).contract(chaincode)

    async def ready(self) -> None:
        """Return once the gateway is up again and the channel is connected."""
        async with asyncio.timeout(TIMEOUT_S):
            await self.up.wait()
            await self.channel.channel_ready()

    def commit_of(self, transaction_id: str) -> Commit:
        """A signed commit-status request for a transaction submitted earlier."""
        request = gateway_pb2.CommitStatusRequest(
            channel_id=self.channel_id,
            transaction_id=transaction_id,
            identity=self.signer.serialized,
        ).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(request=request)
        return self.gateway.new_signed_commit(
            signed.SerializeToString(), self.signer.sign(request)
        )

    async def close(self) -> None:
        await self.channel.close(None)


@dataclass
class ResumingRecord:
    """Per transaction: its final status; and how often a phase was retried."""

    statuses: dict[str, tuple[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    resubmitted: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    entered: dict[str, asyncio.Event] = field(
        default_factory=lambda: {phase: asyncio.Event() for phase in PHASES}
    )
    """Set when a worker starts a phase (the test clears one and waits for it)."""

    async def wait_for_phase(self, phase: str, *, timeout_s: float) -> None:
        """Return once some worker starts `phase` after this call."""
        event = self.entered[phase]
        event.clear()
        async with asyncio.timeout(timeout_s):
            await event.wait()

    @property
    def committed(self) -> int:
        return len(self.statuses)

    async def wait_for_commits(self, count: int, *, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while self.committed < count:
                self.changed.clear()
                await self.changed.wait()


class ResumingLoad:
    """Workers writing public and private keys through `link`, retrying phases."""

    def __init__(
        self, link: GatewayLink, chaincode: str, mspid: str, *, workers: int = 2
    ) -> None:
        self._link = link
        self._contract = link.contract(chaincode)
        self._mspid = mspid
        self._workers = workers
        self._counter = 0
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.record = ResumingRecord()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        self._stopping = True
        async with asyncio.timeout(TIMEOUT_S):
            await asyncio.gather(*self._tasks)

    async def _work(self) -> None:
        while not self._stopping:
            number = self._counter
            self._counter += 1
            try:
                await self._one(number)
            except GatewayError as error:
                self.record.errors.append(f"transaction {number}: {error}")

    async def _one(self, number: int) -> None:
        value = f"resumed-{number}"
        if number % 2:
            proposal = self._contract.new_proposal(
                "PutPrivate",
                COLLECTION,
                f"gw-pvt-{number // 2 % 4}",
                transient={"value": value.encode()},
                endorsing_orgs=[self._mspid],
            )
        else:
            proposal = self._contract.new_proposal(
                "PutPublic",
                f"gw-pub-{number // 2 % 4}",
                value,
                endorsing_orgs=[self._mspid],
            )
        entered = self.record.entered
        entered["endorse"].set()
        transaction = await self._retry(proposal.endorse)
        commit: Commit
        entered["submit"].set()
        try:
            commit = await self._retry(transaction.submit, transaction.transaction_id)
        except SubmitError:
            # Refused after a lost answer (e.g. as a duplicate): ask for its status.
            commit = self._link.commit_of(transaction.transaction_id)
        entered["status"].set()
        status = await self._retry(commit.status)
        self.record.statuses[status.transaction_id] = (
            status.code,
            status.block_number,
        )
        self.record.changed.set()

    async def _retry(
        self, call: Callable[[], Awaitable[_T]], resubmitting: str | None = None
    ) -> _T:
        """`call`, again while it fails because the gateway is gone."""
        for attempt in range(_ATTEMPTS):
            if attempt:
                self.record.retries += 1
                if resubmitting is not None:
                    self.record.resubmitted.add(resubmitting)
                await self._link.ready()
            try:
                return await call()
            except GatewayError as error:
                if error.code not in _GONE or attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
