"""gRPC connections from the gateway to peers and orderers.

`dial` opens a `grpc.aio` channel (TLS unless told otherwise, with the gateway's client
pair when configured). `PeerClient` wraps one peer: `process_proposal` (Endorser),
`open_deliver` (a Deliver, DeliverFiltered or DeliverWithPrivateData stream moving raw
bytes) and a signed ledger query through `qscc`. `OrdererClient` sends envelopes
over one long-lived Broadcast stream (`gateway.broadcast`). Channels are created
lazily and closed by `close()`; every call, and every envelope, carries a deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc

from common.errors import ConfigError
from common.protoutil import Signer, create_proposal, sign_proposal
from common.tls import TlsFiles
from gateway.broadcast import BroadcastStream
from protos.common import common_pb2
from protos.orderer import ab_pb2
from protos.peer import proposal_pb2, proposal_response_pb2

__all__ = [
    "DeliverMethod",
    "DialSettings",
    "OrdererClient",
    "PeerClient",
    "dial",
]

DeliverMethod = Literal["Deliver", "DeliverFiltered", "DeliverWithPrivateData"]
_DELIVER_SERVICE = "/protos.Deliver/"
_PROCESS_PROPOSAL = "/protos.Endorser/ProcessProposal"
_BROADCAST = "/orderer.AtomicBroadcast/Broadcast"
_QSCC = "qscc"
RECONNECT_BACKOFF_INITIAL_MS = 100
RECONNECT_BACKOFF_MAX_MS = 1_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DialSettings:
    """How to connect: trusted server CAs as PEM (None = plaintext), our client pair.

    `client_pair` is (certificate PEM, private key PEM) for servers that want mutual
    TLS; `server_name` overrides the name the server certificate must carry.
    """

    root_certs: bytes | None
    client_pair: tuple[bytes, bytes] | None = None
    server_name: str | None = None
    max_message_bytes: int = 100 * 1024 * 1024

    @classmethod
    def from_files(
        cls,
        tls: TlsFiles | None,
        *,
        client_tls: TlsFiles | None = None,
        extra_roots: Sequence[bytes] = (),
        server_name: str | None = None,
        max_message_bytes: int = 100 * 1024 * 1024,
    ) -> DialSettings:
        """Settings from PEM files (`tls` None = plaintext) plus extra root PEMs.

        Raises:
            ConfigError: a file cannot be read.
        """
        if tls is None:
            return cls(root_certs=None, max_message_bytes=max_message_bytes)
        roots = b"".join([*(_read(path) for path in tls.root_cas), *extra_roots])
        pair = None
        if client_tls is not None and client_tls.cert and client_tls.key:
            pair = (_read(client_tls.cert), _read(client_tls.key))
        return cls(
            root_certs=roots,
            client_pair=pair,
            server_name=server_name,
            max_message_bytes=max_message_bytes,
        )


def dial(address: str, settings: DialSettings) -> grpc.aio.Channel:
    """A lazily connecting grpc.aio channel to `address`."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # gRPC's default backoff grows to 2 minutes while a node is down, and calls
        # fail at once until the next attempt: a restarted orderer or peer would be
        # refused that long. One attempt a second at most costs a down node a TCP
        # connect a second and serves a restarted one within a second.
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_INITIAL_MS),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MAX_MS),
    ]
    if settings.root_certs is None:
        return grpc.aio.insecure_channel(address, options=options)
    if settings.server_name:
        options.append(("grpc.ssl_target_name_override", settings.server_name))
    cert, key = settings.client_pair or (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=settings.root_certs or None,
        private_key=key,
        certificate_chain=cert,
    )
    return grpc.aio.secure_channel(address, credentials, options=options)


class PeerClient:
    """One peer: its address, MSP id and a gRPC channel to it."""

    def __init__(self, address: str, mspid: str, settings: DialSettings) -> None:
        self.address = address
        self.mspid = mspid
        self._settings = settings
        self._channel: grpc.aio.Channel | None = None

    def __repr__(self) -> str:
        return f"PeerClient({self.address!r}, {self.mspid!r})"

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = dial(self.address, self._settings)
        return self._channel

    async def process_proposal(
        self, signed: proposal_pb2.SignedProposal, *, deadline_s: float
    ) -> proposal_response_pb2.ProposalResponse:
        """Endorser.ProcessProposal; raises grpc.aio.AioRpcError when the call fails."""
        call = self.channel.unary_unary(
            _PROCESS_PROPOSAL,
            request_serializer=proposal_pb2.SignedProposal.SerializeToString,
            response_deserializer=proposal_response_pb2.ProposalResponse.FromString,
        )
        response: proposal_response_pb2.ProposalResponse = await call(
            signed, timeout=deadline_s
        )
        return response

    def open_deliver(
        self, method: DeliverMethod, *, deadline_s: float | None = None
    ) -> grpc.aio.StreamStreamCall[bytes, bytes]:
        """A Deliver-family stream moving raw bytes both ways."""
        call = self.channel.stream_stream(
            _DELIVER_SERVICE + method,
            request_serializer=_identity,
            response_deserializer=_identity,
        )
        stream: grpc.aio.StreamStreamCall[bytes, bytes] = call(  # type: ignore[call-arg]
            timeout=deadline_s
        )
        return stream

    async def query_system_chaincode(
        self,
        channel_id: str,
        args: Sequence[bytes],
        *,
        creator: bytes,
        signer: Signer,
        deadline_s: float,
        chaincode: str = _QSCC,
    ) -> proposal_response_pb2.ProposalResponse:
        """A signed proposal to a system chaincode (qscc by default) of `channel_id`."""
        created = create_proposal(
            channel_id=channel_id, chaincode_name=chaincode, args=args, creator=creator
        )
        return await self.process_proposal(
            sign_proposal(created.proposal_bytes, signer), deadline_s=deadline_s
        )

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close(None)


class OrdererClient:
    """One orderer endpoint reached through its Broadcast service."""

    def __init__(self, address: str, mspid: str, settings: DialSettings) -> None:
        self.address = address
        self.mspid = mspid
        self._settings = settings
        self._channel: grpc.aio.Channel | None = None
        self._stream: BroadcastStream | None = None

    def __repr__(self) -> str:
        return f"OrdererClient({self.address!r}, {self.mspid!r})"

    async def broadcast(
        self, envelope: common_pb2.Envelope, *, deadline_s: float
    ) -> ab_pb2.BroadcastResponse:
        """Send one envelope on the shared stream and read its response.

        Raises:
            grpc.aio.AioRpcError: the stream failed.
            ConnectionError: the stream ended or did not answer within `deadline_s`.
        """
        if self._stream is None:
            self._stream = BroadcastStream(self.address, self._open_broadcast)
        return await self._stream.send(
            envelope.SerializeToString(), deadline_s=deadline_s
        )

    def _open_broadcast(self) -> grpc.aio.StreamStreamCall[bytes, bytes]:
        if self._channel is None:
            self._channel = dial(self.address, self._settings)
        call = self._channel.stream_stream(
            _BROADCAST, request_serializer=_identity, response_deserializer=_identity
        )
        stream: grpc.aio.StreamStreamCall[bytes, bytes] = call()  # type: ignore[call-arg]
        return stream

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close(None)


def _identity(data: bytes) -> bytes:
    return data


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read TLS file: {error.strerror}") from error
