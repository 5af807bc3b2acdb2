"""The etcd ordering backend: crash-fault-tolerant ordering for a cluster of orderers.

etcd (a Raft-replicated, fsyncing key-value store) is the totally ordered log; the
orderers are its clients. Per channel one of the consenters wins an etcd election
(etcd_election) and cuts blocks (etcd_cutter); the others forward their clients'
envelopes to it over gRPC, authenticated by a secret only etcd's clients can read
(etcd_forward, etcd_routing). Block n is written with a compare-and-swap that cannot
fork the chain (etcd_log); every orderer, cutter included, appends each block, in order
and exactly once, to its own store (etcd_follow). `order()` resolves when the envelope
is in a block stored *here*, so an acknowledged envelope is in the chain; a cutter
drops envelopes already in a recent block, so a retried forward is not ordered twice
(etcd_pending). The cutter prunes blocks every orderer has stored (minus a retention
window) and compacts etcd; an orderer needing pruned blocks gets them from
`block_puller`, by default another orderer's Deliver service (etcd_puller, with the
orderer's signing identity), or fails with BlocksPruned. Settings: etcd_settings;
errors: etcd_types.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from common.msp import SigningIdentity, load_signing_identity
from orderer.config import OrdererConfig
from orderer.consensus.base import ChainSupport
from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_cutter import CutterTerm
from orderer.consensus.etcd_election import CutterInfo, Election, Follower, Term, Vacant
from orderer.consensus.etcd_follow import Backoff, BlockFollower, BlockPuller
from orderer.consensus.etcd_forward import (
    ForwardClient,
    ForwardOutcome,
    ForwardServicer,
    ForwardStatus,
    SharedForwardKey,
    forward_handler,
)
from orderer.consensus.etcd_log import BlockLog, ChannelKeys
from orderer.consensus.etcd_pending import EnvelopeTable, envelope_digest
from orderer.consensus.etcd_puller import DeliverPuller
from orderer.consensus.etcd_routing import Forwarder, answer_forwarded
from orderer.consensus.etcd_settings import (
    EtcdSettings,
    is_consenter,
    settings_from_config,
)
from orderer.consensus.etcd_types import EtcdRevisionCompacted, EtcdUnavailable
from orderer.errors import BackendUnavailable

__all__ = ["EtcdBackend", "EtcdChain", "EtcdSettings", "create_backend"]

_LOG = logging.getLogger(__name__)

_RESIGN_TIMEOUT_S = 1.0


def create_backend(config: OrdererConfig) -> EtcdBackend:
    """The etcd backend of an orderer configured with `backend: {type: etcd, ...}`.

    See `settings_from_config` for how orderer.yaml maps onto EtcdSettings; the MSP
    signing identity signs the seeks of the block puller.

    Raises:
        ConfigError: no etcd section, `listen` has port 0, or a TLS file is unreadable.
        MspError: the signing identity cannot be loaded.
    """
    signer = load_signing_identity(config.msp_dir, mspid=config.mspid)
    return EtcdBackend(settings_from_config(config), signer=signer)


class EtcdBackend:
    """The `etcd` OrderingBackend: one etcd client and Forward client for all channels."""

    name = "etcd"

    def __init__(
        self,
        settings: EtcdSettings,
        *,
        block_puller: BlockPuller | None = None,
        signer: SigningIdentity | None = None,
    ):
        self.settings = settings
        self.block_puller = block_puller
        """Gets blocks etcd pruned; None: another orderer's Deliver when `signer` is
        given, else none (the chain fails with BlocksPruned)."""
        self.signer = signer
        self.forward_address = settings.forward_address
        self._forward_key = SharedForwardKey(
            self.client, settings.prefix.rstrip("/").encode() + b"/forward-key"
        )
        self._client: EtcdClient | None = None
        self._forward: ForwardClient | None = None
        self._chains: dict[str, EtcdChain] = {}

    def new_chain(self, support: ChainSupport) -> EtcdChain:
        chain = EtcdChain(support, backend=self)
        self._chains[support.channel_id] = chain
        return chain

    def advertise(self, forward_address: str) -> None:
        """Where other orderers reach this one's Forward service (host:port), for
        chains started from now on."""
        self.forward_address = forward_address

    def rpc_handlers(self) -> Sequence[grpc.GenericRpcHandler[Any, Any]]:
        """The Forward service, for the orderer's gRPC listener (GrpcBackend)."""
        servicer = ForwardServicer(self._chains.get, key=self._forward_key)
        return [forward_handler(servicer)]

    def client(self) -> EtcdClient:
        """The shared etcd client, opened on first use (inside the event loop)."""
        if self._client is None:
            self._client = EtcdClient(
                self.settings.endpoints,
                tls=self.settings.tls,
                request_timeout_s=self.settings.request_timeout_s,
            )
        return self._client

    def forward_client(self) -> ForwardClient:
        if self._forward is None:
            self._forward = ForwardClient(
                sender=self.settings.orderer_name,
                key=self._forward_key,
                tls=self.settings.forward_tls,
            )
        return self._forward

    def forget(self, chain: EtcdChain) -> None:
        if self._chains.get(chain.channel_id) is chain:
            del self._chains[chain.channel_id]

    async def close(self) -> None:
        """Close the connections (after every chain has stopped)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._forward is not None:
            await self._forward.close()
            self._forward = None


class Role(enum.Enum):
    UNKNOWN = "unknown"
    CUTTER = "cutter"
    FOLLOWER = "follower"


class EtcdChain:
    """One channel ordered through etcd, on this orderer."""

    def __init__(self, support: ChainSupport, *, backend: EtcdBackend) -> None:
        settings = backend.settings
        self.support = support
        self.channel_id = support.channel_id
        self.settings = settings
        self.keys = ChannelKeys.under(settings.prefix, support.channel_id)
        self.table = EnvelopeTable(
            capacity=settings.pending_max,
            window_s=settings.recent_window_s,
            envelopes_max=settings.recent_envelopes_max,
        )
        self._backend = backend
        self._role = Role.UNKNOWN
        self._cutter: CutterInfo | None = None
        self._term: Term | None = None
        self._role_changed = asyncio.Event()
        self._error: BaseException | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._parts: _Parts | None = None
        self.me = CutterInfo(orderer_name=settings.orderer_name, forward_address="")

    @property
    def is_cutter(self) -> bool:
        return self._role is Role.CUTTER

    @property
    def error(self) -> BaseException | None:
        """Why the chain failed or stopped (None while it runs)."""
        return self._error

    @property
    def cutter_name(self) -> str | None:
        """The orderer this one believes is cutter (None while it does not know)."""
        return None if self._cutter is None else self._cutter.orderer_name

    # The Chain interface

    async def start(self) -> None:
        self.table.note_stored_height(self.support.height())
        self.me = CutterInfo(
            orderer_name=self.settings.orderer_name,
            forward_address=self._backend.forward_address,
        )
        client = self._backend.client()
        log = BlockLog(client, self.keys)
        follower = BlockFollower(
            support=self.support,
            log=log,
            table=self.table,
            puller=self._backend.block_puller or self._deliver_puller(log),
        )
        self._parts = _Parts(
            log=log,
            election=Election(
                client, self.keys, self.me, ttl_s=self.settings.lease_ttl_s
            ),
            follower=follower,
            forwarder=Forwarder(
                channel_id=self.channel_id,
                table=self.table,
                client=self._backend.forward_client,
                caught_up=lambda: follower.reach_etcd_height(
                    timeout_s=self.settings.forward_timeout_s
                ),
                timeout_s=self.settings.forward_timeout_s,
                attempts_max=self.settings.forward_attempts_max,
                in_flight_max=self.settings.forward_in_flight_max,
            ),
        )
        self._supervisor = asyncio.create_task(
            self._run(self._parts), name=f"etcd-chain-{self.channel_id}"
        )

    async def order(self, envelope: bytes) -> int:
        """Order `envelope`; returns the number of the block, stored here, that holds it.

        An envelope already in a block stored here in the last `recent_window_s` is
        not ordered again: that block's number is returned.

        Raises:
            BackendUnavailable: not in a stored block within `order_timeout_s`, too many
                envelopes waiting, or the chain has failed or stopped.
            BroadcastRejected: EnvelopeTooLarge (no block small enough for etcd can hold
                it), or a config update that no longer applies when its block is cut.
        """
        self._check_running()
        digest = envelope_digest(envelope)
        known = self.table.block_of(digest)
        if known is not None:
            return known
        entry = self.table.admit(envelope, local=True, digest=digest)
        try:
            async with asyncio.timeout(self.settings.order_timeout_s):
                return await asyncio.shield(entry.future)
        except TimeoutError:
            error = BackendUnavailable(
                f"envelope not in a block within {self.settings.order_timeout_s} s "
                f"(channel {self.channel_id})"
            )
            self.table.fail(entry, error)
            raise error from None

    def submit(
        self,
        envelope: bytes,
        *,
        config_sequence: int,
        is_config: bool,
        tx_id: str | None = None,
    ) -> asyncio.Future[int]:
        """Admit without waiting: a future of its own, resolved with the entry's.

        The entry's future is shared (a follower may forward the same envelope), so
        the caller gets a copy it may cancel. `order_timeout_s` is enforced by the
        chain's sweep of overdue entries instead of a timer per envelope.
        """
        outcome: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        try:
            self._check_running()
            digest = envelope_digest(envelope)
            known = self.table.block_of(digest)
            if known is not None:
                outcome.set_result(known)
                return outcome
            entry = self.table.admit(
                envelope,
                local=True,
                digest=digest,
                config_sequence=config_sequence,
                is_config=is_config,
                tx_id=tx_id,
            )
        except BackendUnavailable as error:
            outcome.set_exception(error)
            return outcome
        entry.future.add_done_callback(functools.partial(_copy_outcome, outcome))
        return outcome

    async def stop(self, *, resign: bool = True) -> None:
        """Stop; with `resign` hand the cutter role over at once (else the lease expires)."""
        self._backend.forget(self)
        term = self._term
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if resign and term is not None and self._parts is not None:
            await self._parts.election.resign(term, timeout_s=_RESIGN_TIMEOUT_S)
        if self._error is None:
            self._error = BackendUnavailable(f"etcd chain {self.channel_id} is stopped")
        self.table.fail_all(self._error)

    async def order_forwarded(
        self, envelopes: Sequence[bytes], *, config_sequences: Sequence[int] = ()
    ) -> list[ForwardOutcome]:
        """Order envelopes a follower forwarded; one outcome each, in order."""
        term = self._term
        if self._role is not Role.CUTTER or term is None or not term.is_valid():
            outcome = ForwardOutcome(ForwardStatus.NOT_CUTTER, message="not the cutter")
            return [outcome] * len(envelopes)
        return await answer_forwarded(
            self.table,
            envelopes,
            config_sequences=config_sequences,
            term_ended=term.ended,
            timeout_s=self.settings.forward_timeout_s,
        )

    # Background jobs

    async def _run(self, parts: _Parts) -> None:
        settings = self.settings
        try:
            async with asyncio.TaskGroup() as jobs:
                jobs.create_task(parts.follower.follow())
                jobs.create_task(self._expire_overdue())
                jobs.create_task(self._elect(parts))
                jobs.create_task(
                    parts.forwarder.run(
                        self._wait_for_cutter_address, self._cutter_address
                    )
                )
                jobs.create_task(
                    parts.follower.report(
                        orderer_name=settings.orderer_name,
                        address=self.me.forward_address,
                        interval_s=settings.report_interval_s,
                        is_cutter=lambda: self.is_cutter,
                        prune_interval_s=settings.prune_interval_s,
                        retention_blocks=settings.retention_blocks,
                    )
                )
        except* Exception as group:
            error: BaseException = group
            while isinstance(error, BaseExceptionGroup):
                error = error.exceptions[0]
            _LOG.error("etcd chain failed channel=%s: %r", self.channel_id, error)
            self._error = error
            self.table.fail_all(
                BackendUnavailable(f"etcd chain {self.channel_id} failed: {error}")
            )

    async def _elect(self, parts: _Parts) -> None:
        backoff = Backoff()
        while True:
            try:
                outcome = await parts.election.campaign(may_win=self._may_cut())
                if isinstance(outcome, Follower):
                    self._set_role(Role.FOLLOWER, cutter=outcome.cutter)
                    await parts.election.wait_for_change(outcome.revision)
                elif isinstance(outcome, Vacant):
                    self._set_role(Role.UNKNOWN, cutter=None)
                    await parts.election.wait_for_change(outcome.revision)
                else:
                    await self._serve_term(parts, outcome)
                backoff.reset()
            except (EtcdUnavailable, EtcdRevisionCompacted) as error:
                _LOG.info("election interrupted channel=%s: %s", self.channel_id, error)
                self._set_role(Role.UNKNOWN, cutter=None)
                await backoff.sleep()

    async def _serve_term(self, parts: _Parts, term: Term) -> None:
        self._term = term
        self._set_role(Role.CUTTER, cutter=self.me)
        cutter = CutterTerm(
            term=term,
            host=parts.follower,
            support=self.support,
            log=parts.log,
            table=self.table,
        )
        try:
            async with asyncio.TaskGroup() as jobs:
                jobs.create_task(parts.election.keep_alive(term))
                await cutter.run()
                term.end()
        finally:
            term.end()
            self._term = None
            self._set_role(Role.UNKNOWN, cutter=None)
        if not term.lost_contact:
            # The term ended for another reason than an unreachable etcd: let go now.
            await parts.election.resign(term, timeout_s=_RESIGN_TIMEOUT_S)

    async def _expire_overdue(self) -> None:
        """Fail local envelopes not in a block within `order_timeout_s` (see submit)."""
        timeout_s = self.settings.order_timeout_s

        def overdue() -> BackendUnavailable:
            return BackendUnavailable(
                f"envelope not in a block within {timeout_s} s "
                f"(channel {self.channel_id})"
            )

        while True:
            await asyncio.sleep(min(1.0, timeout_s / 4))
            self.table.fail_overdue(age_s=timeout_s, error=overdue)

    # Helpers

    def _deliver_puller(self, log: BlockLog) -> BlockPuller | None:
        """Pulls from the other orderers' Deliver, at the addresses they recorded."""
        signer = self._backend.signer
        if signer is None:
            return None
        me = self.settings.orderer_name

        async def others() -> list[str]:
            recorded = await log.orderer_addresses()
            return [address for name, address in sorted(recorded.items()) if name != me]

        return DeliverPuller(
            signer=signer,
            tls=self.settings.forward_tls,
            addresses=others,
            config=self.support.channel_config,
        )

    def _may_cut(self) -> bool:
        """Only consenters (by TLS certificate) cut blocks; see `is_consenter`."""
        tls = self.settings.forward_tls
        consenters = self.support.channel_config().consenters
        if is_consenter(consenters, None if tls is None else tls.cert_pem):
            return True
        _LOG.info("not a consenter, never cuts channel=%s", self.channel_id)
        return False

    def _set_role(self, role: Role, *, cutter: CutterInfo | None) -> None:
        self._role = role
        self._cutter = cutter
        self._role_changed.set()
        if self._parts is not None:
            following = role is Role.FOLLOWER and cutter is not None
            address = cutter.forward_address if following and cutter else None
            self._parts.forwarder.cutter_changed(address)

    def _cutter_address(self) -> str | None:
        """The Forward address of the cutter this orderer follows (None: not following)."""
        cutter = self._cutter
        if (
            self._role is Role.FOLLOWER
            and cutter is not None
            and cutter.forward_address
        ):
            return cutter.forward_address
        return None

    async def _wait_for_cutter_address(self) -> str:
        """The current cutter's Forward address, once this orderer is a follower."""
        while True:
            self._role_changed.clear()
            address = self._cutter_address()
            if address is not None:
                return address
            await self._role_changed.wait()

    def _check_running(self) -> None:
        if self._error is not None:
            raise BackendUnavailable(
                f"etcd chain {self.channel_id} is not running: {self._error}"
            )
        if self._supervisor is None:
            raise BackendUnavailable(f"etcd chain {self.channel_id} is not started")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Parts:
    """The chain's collaborators, made in start() inside the event loop."""

    log: BlockLog
    election: Election
    follower: BlockFollower
    forwarder: Forwarder


def _copy_outcome(target: asyncio.Future[int], source: asyncio.Future[int]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.set_exception(BackendUnavailable("given up"))
    elif (error := source.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())
