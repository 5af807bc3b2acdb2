"""Blocks etcd no longer holds, pulled from another orderer's Deliver service.

A cutter prunes etcd below what every registered orderer has stored (etcd_follow), so
an orderer that was away long enough — or joins late — finds the blocks it needs below
etcd's base. `DeliverPuller(channel_id, start, end)` asks the other orderers of the
channel (their addresses as they advertised them in etcd), one after another, for
blocks [start, end) with a signed seek (`/Channel/Readers`, this orderer's identity)
(carrying the hash of this orderer's TLS certificate, which a mutual-TLS listener
requires and a plain-TLS one refuses, so the seek is sent again without it after a
BAD_REQUEST) and yields each block once it has checked it: the expected number, and orderer
signatures that satisfy the channel's `/Channel/Orderer/BlockValidation` as of the
block's last transaction. The caller appends what it yields (the store then checks
the hash chain), so a block is checked against the config in force when it was
written. Orderers that fail, stop early or send a bad block are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from common.channelconfig import ChannelConfig
from common.errors import PolicyError, WireError
from common.msp import SigningIdentity
from common.policies import SignedData
from common.protoutil import (
    FAIL_IF_NOT_READY,
    SeekPosition,
    block_signature_messages,
    block_time,
    create_seek_envelope,
)
from common.tls import cert_hash
from orderer.consensus.etcd_forward import ForwardTls, open_orderer_channel
from protos.common import common_pb2
from protos.orderer import ab_pb2

__all__ = ["BLOCK_VALIDATION", "DeliverPuller", "verify_block_signatures"]

_LOG = logging.getLogger(__name__)

BLOCK_VALIDATION = "/Channel/Orderer/BlockValidation"
DELIVER = "/orderer.AtomicBroadcast/Deliver"
PULL_TIMEOUT_S = 60.0


class PullRefused(Exception):
    """Internal: an orderer sent something other than the next good block."""


class SeekRefused(PullRefused):
    """Internal: the orderer refused the seek itself as BAD_REQUEST."""


class DeliverPuller:
    """Pulls a range of blocks from the first orderer that has them (a BlockPuller)."""

    def __init__(
        self,
        *,
        signer: SigningIdentity,
        tls: ForwardTls | None,
        addresses: Callable[[], Awaitable[Sequence[str]]],
        config: Callable[[], ChannelConfig],
    ) -> None:
        self.signer = signer
        self.tls = tls
        self.addresses = addresses
        self.config = config

    async def __call__(
        self, channel_id: str, start: int, end: int
    ) -> AsyncIterator[common_pb2.Block]:
        number = start
        hashes = [None] if self.tls is None else [cert_hash(self.tls.cert_pem), None]
        for address in await self.addresses():
            for tls_cert_hash in hashes:
                if number >= end:
                    return
                try:
                    async for block in self._pull_from(
                        address, channel_id, number, end, tls_cert_hash=tls_cert_hash
                    ):
                        yield block
                        number += 1
                except SeekRefused:
                    continue  # the other way of presenting the TLS certificate
                except (grpc.aio.AioRpcError, PullRefused, TimeoutError) as error:
                    _LOG.info(
                        "block pull from %s stopped at %d channel=%s: %s",
                        address,
                        number,
                        channel_id,
                        _describe(error),
                    )
                break

    async def _pull_from(
        self,
        address: str,
        channel_id: str,
        start: int,
        end: int,
        *,
        tls_cert_hash: bytes | None,
    ) -> AsyncIterator[common_pb2.Block]:
        seek = create_seek_envelope(
            channel_id=channel_id,
            start=SeekPosition.specified(start),
            stop=SeekPosition.specified(end - 1),
            behavior=FAIL_IF_NOT_READY,
            creator=self.signer.serialized,
            signer=self.signer.sign,
            tls_cert_hash=tls_cert_hash,
        ).SerializeToString()
        async with open_orderer_channel(address, self.tls) as channel:
            call: Any = channel.stream_stream(DELIVER)(timeout=PULL_TIMEOUT_S)  # type: ignore[call-arg]
            await call.write(seek)
            await call.done_writing()
            number = start
            async for data in call:
                response = ab_pb2.DeliverResponse.FromString(data)
                if response.WhichOneof("Type") != "block":
                    if response.status == common_pb2.BAD_REQUEST and number == start:
                        raise SeekRefused(f"seek refused at block {number}")
                    if response.status != common_pb2.SUCCESS or number < end:
                        raise PullRefused(f"status {response.status} at block {number}")
                    return
                block = response.block
                if block.header.number != number:
                    raise PullRefused(f"got block {block.header.number}, not {number}")
                try:
                    verify_block_signatures(block, self.config())
                except (WireError, PolicyError) as error:
                    raise PullRefused(str(error)) from None
                yield block
                number += 1


def verify_block_signatures(block: common_pb2.Block, config: ChannelConfig) -> None:
    """Raise unless the orderer signatures satisfy BlockValidation (at block time).

    Raises:
        WireError: the signatures metadata does not decode.
        PolicyError: the policy is not satisfied.
    """
    msps = config.msp_manager.at_time(block_time(block))
    config.policy_manager.get(BLOCK_VALIDATION).evaluate(
        [
            SignedData(data=m.message, identity=m.identity, signature=m.signature)
            for m in block_signature_messages(block)
        ],
        msps,
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name} {error.details()}"
    return str(error) or type(error).__name__
