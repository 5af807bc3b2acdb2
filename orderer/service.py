"""The orderer's gRPC service `orderer.AtomicBroadcast`: Broadcast and Deliver.

Both methods move raw bytes (no serializers): Broadcast keeps each envelope's exact
bytes for the block, and Deliver sends stored block bytes without re-encoding. The
per-method logic lives in `broadcast_stream` and `deliver`; this module admits an
envelope (checks in `broadcast`, config updates in `configupdate`) and wires the
methods to the registrar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc

from common.deliver import DeliverChannel, DeliverSettings
from common.protoutil import ParsedEnvelope
from orderer.broadcast import EnvelopeChecker, parse_broadcast_envelope
from orderer.broadcast_stream import Checked, serve_broadcast
from orderer.consensus.base import Chain
from orderer.deliver import serve_deliver
from orderer.errors import BroadcastRejected
from orderer.metrics import count_broadcast
from orderer.registrar import ChannelSupport, Registrar
from orderer.signature_worker import (
    SignatureItem,
    SignatureWorker,
    Verdict,
    signature_verdict,
    signature_verdicts,
)
from protos.common import common_pb2

__all__ = ["SERVICE_NAME", "AtomicBroadcastService"]

SERVICE_NAME = "orderer.AtomicBroadcast"

_Context = grpc.aio.ServicerContext[Any, Any]


class AtomicBroadcastService:
    """Broadcast and Deliver for the registrar's channels."""

    def __init__(
        self,
        registrar: Registrar,
        *,
        broadcast_window: int,
        deliver_settings: DeliverSettings,
        signatures: SignatureWorker | None = None,
    ) -> None:
        """`signatures`: Broadcast verifies in batches there (else on the loop)."""
        self._registrar = registrar
        self._window = broadcast_window
        self._verify = (
            signature_verdicts_now if signatures is None else signatures.verify
        )
        self._deliver_settings = deliver_settings
        self._draining = False

    def drain(self) -> None:
        """Refuse new envelopes with SERVICE_UNAVAILABLE (first step of shutdown).

        Clients then send them to another orderer; envelopes already admitted are still
        answered once their block is written.
        """
        self._draining = True

    def rpc_handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Broadcast": grpc.stream_stream_rpc_method_handler(self.broadcast),
                "Deliver": grpc.stream_stream_rpc_method_handler(self.deliver),
            },
        )

    async def broadcast(self, _requests: object, context: _Context) -> None:
        await serve_broadcast(
            context, self.check, verify=self._verify, window=self._window
        )

    async def deliver(self, _requests: object, context: _Context) -> None:
        await serve_deliver(
            context, channels=self._deliver_channel, settings=self._deliver_settings
        )

    def admit(self, data: bytes) -> asyncio.Future[int]:
        """Check one envelope and hand it to its chain; returns the block number's future.

        Raises:
            BroadcastRejected: a check failed; carries the status to answer.
        """
        checked = self.check(data)
        return checked.finish(signature_verdict(checked.signature))

    def check(self, data: bytes) -> Checked:
        """Every check of one envelope but its signature's; `finish` does the rest.

        Raises:
            BroadcastRejected: a check failed; carries the status to answer.
        """
        envelope: ParsedEnvelope | None = None
        try:
            envelope = parse_broadcast_envelope(data)
            if self._draining:
                raise BroadcastRejected(
                    "this orderer is shutting down; send to another orderer",
                    status=common_pb2.SERVICE_UNAVAILABLE,
                )
            channel_id = envelope.channel_id
            support = self._registrar.support(channel_id)
            chain = self._registrar.chain(channel_id)
            if support is None or chain is None:
                raise BroadcastRejected(
                    f"channel {channel_id} not found", status=common_pb2.NOT_FOUND
                )
            # The sequence of the config checked against, read before checking: a
            # chain that cuts the envelope under a later config checks it again.
            config_sequence = support.config_sequence()
            signature = support.checker.check_unsigned(envelope, size=len(data))
        except BroadcastRejected as rejected:
            _count_rejected(envelope, rejected)
            raise
        parsed = envelope

        def finish(verdict: Verdict) -> asyncio.Future[int]:
            try:
                EnvelopeChecker.check_signed(parsed, verdict)
                return _order(support, chain, parsed, data, config_sequence)
            except BroadcastRejected as rejected:
                _count_rejected(parsed, rejected)
                raise

        return Checked(signature, finish)

    def _deliver_channel(self, channel_id: str) -> DeliverChannel | None:
        return self._registrar.support(channel_id)


def _order(
    support: ChannelSupport,
    chain: Chain,
    envelope: ParsedEnvelope,
    data: bytes,
    config_sequence: int,
) -> asyncio.Future[int]:
    is_config = envelope.header_type == common_pb2.CONFIG_UPDATE
    if is_config:
        # What is ordered is the CONFIG envelope the update makes, signed by this
        # orderer; the chain checks it again at cut time (orderer.configupdate).
        data = support.propose_config_update(data)
    ordered = chain.submit(
        data,
        config_sequence=config_sequence,
        is_config=is_config,
        tx_id=None if is_config else envelope.tx_id,
    )
    count_broadcast(envelope.channel_id, envelope.header_type, common_pb2.SUCCESS)
    return ordered


def _count_rejected(
    envelope: ParsedEnvelope | None, rejected: BroadcastRejected
) -> None:
    if envelope is None:
        count_broadcast("", None, rejected.status)
    else:
        count_broadcast(envelope.channel_id, envelope.header_type, rejected.status)


def signature_verdicts_now(
    items: Sequence[SignatureItem],
) -> asyncio.Future[list[Verdict]]:
    """The verdicts, reached on the event loop: a resolved future."""
    future: asyncio.Future[list[Verdict]] = asyncio.get_running_loop().create_future()
    future.set_result(signature_verdicts(items))
    return future
