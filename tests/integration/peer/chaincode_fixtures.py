"""Shared pieces of the chaincode support tests: a peer side over real gRPC, proposals.

`PeerSide` runs the peer's half (registry, executor, Register service on
127.0.0.1:0). `RawChaincode` is a chaincode written by hand, one message at a
time, so a test can say exactly what crosses the stream.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from chaincode.testing import Event, InvocationResult, make_identity
from common.crypto import PrivateKey
from common.crypto.issue import ExtendedKeyUsage, Subject, issue_ca, issue_certificate
from common.protoutil import (
    ChaincodeResponse,
    ParsedProposal,
    SerializedIdentity,
    create_proposal,
    parse_signed_proposal,
    serialize_identity,
    sign_proposal,
)
from peer.chaincode.execute import ChaincodeExecutor, ChaincodeInfo, StaticLifecycle
from peer.chaincode.launcher import ChaincodeLauncher, PeerTlsFiles
from peer.chaincode.registry import ChaincodeRegistry
from peer.chaincode.support import (
    SERVER_OPTIONS,
    ChaincodeSupportService,
    add_chaincode_support,
)
from peer.errors import ChaincodeError
from peer.ledger import pvtdata
from peer.ledger.hashed import HashedUpdateBatch, apply_hashed_updates
from peer.ledger.history import HistoryBatch, KeyWrite, Timestamp, write_history
from peer.ledger.pvtstate import PrivateUpdateBatch, apply_private_updates
from peer.ledger.schema import open_channel_db, transaction
from peer.ledger.statedb import UpdateBatch, Version, write_savepoint, write_updates
from peer.simulator import SimulationResults, Snapshots, TxSimulator, open_simulator
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import chaincode_event_pb2, chaincode_shim_pb2, chaincode_shim_pb2_grpc
from tests.unit.peer.simfakes import FakeReader

Message = chaincode_shim_pb2.ChaincodeMessage
CHANNEL = "medical"
READ_TIMEOUT_S = 10.0
STARTUP_TIMEOUT_S = 30.0

CREATOR = serialize_identity(
    "Org1MSP",
    b"-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n",
)


def proposal(
    args: Sequence[bytes],
    *,
    chaincode: str = "asset",
    transient: Mapping[str, bytes] | None = None,
    is_init: bool = False,
) -> ParsedProposal:
    created = create_proposal(
        channel_id=CHANNEL,
        chaincode_name=chaincode,
        args=args,
        creator=CREATOR,
        transient=transient,
        is_init=is_init,
    )
    signed = sign_proposal(
        created.proposal_bytes, lambda message: b"sig:" + message[:8]
    )
    return parse_signed_proposal(signed)


@dataclass
class PeerSide:
    """The peer's chaincode support, serving Register on a free local port."""

    reader: FakeReader = field(default_factory=FakeReader)
    chaincodes: dict[str, ChaincodeInfo] = field(default_factory=dict)
    execute_timeout_s: float = 10.0
    allow_unsolicited: bool = True
    registry: ChaincodeRegistry = field(init=False)
    executor: ChaincodeExecutor = field(init=False)
    server: grpc.aio.Server = field(init=False)
    address: str = field(init=False)

    async def start(self) -> PeerSide:
        self.registry = ChaincodeRegistry(allow_unsolicited=self.allow_unsolicited)
        self.executor = ChaincodeExecutor(
            self.registry,
            StaticLifecycle(self.chaincodes),
            execute_timeout_s=self.execute_timeout_s,
            startup_timeout_s=READ_TIMEOUT_S,
            simulators=self.simulator_on,
        )
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        add_chaincode_support(
            self.server, ChaincodeSupportService(self.registry, invoker=self.executor)
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.registry.close_all("test over")
        await self.server.stop(None)

    def simulator(self, tx_id: str = "tx") -> TxSimulator:
        return TxSimulator(self.reader, channel_id=CHANNEL, tx_id=tx_id)

    def simulator_on(self, channel_id: str, tx_id: str) -> TxSimulator:
        return TxSimulator(self.reader, channel_id=channel_id, tx_id=tx_id)


class RawChaincode:
    """A hand-driven chaincode stream: `send` and `recv` single messages."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        stub = chaincode_shim_pb2_grpc.ChaincodeSupportStub(self._channel)
        self.call = stub.Register()  # type: ignore[call-arg]

    async def register(self, package_id: str) -> None:
        from protos.peer import chaincode_pb2

        payload = chaincode_pb2.ChaincodeID(name=package_id).SerializeToString()
        await self.send(Message(type=Message.REGISTER, payload=payload))
        assert (await self.recv()).type == Message.REGISTERED
        ready = await self.recv()
        assert ready.type == Message.READY
        assert ready.payload == b""

    async def send(self, message: Message) -> None:
        await self.call.write(message)

    async def request(self, request_type: int, payload: bytes, on: Message) -> Message:
        """Send a state request for the transaction of `on` and return the answer."""
        await self.send(
            Message(
                type=request_type,  # type: ignore[arg-type]
                payload=payload,
                txid=on.txid,
                channel_id=on.channel_id,
            )
        )
        return await self.recv()

    async def complete(self, on: Message, payload: bytes, **fields: object) -> None:
        await self.send(
            Message(
                type=Message.COMPLETED,
                payload=payload,
                txid=on.txid,
                channel_id=on.channel_id,
                **fields,  # type: ignore[arg-type]
            )
        )

    async def recv(self) -> Message:
        message = await asyncio.wait_for(self.call.read(), READ_TIMEOUT_S)
        assert isinstance(message, Message), f"stream ended: {message!r}"
        return message

    async def ended(self) -> bool:
        """Whether the peer ended the stream (reads until EOF or an error)."""
        try:
            message = await asyncio.wait_for(self.call.read(), READ_TIMEOUT_S)
        except grpc.aio.AioRpcError:
            return True
        return not isinstance(message, Message)

    async def close(self) -> None:
        self.call.cancel()
        await self._channel.close(None)


# ---------------------------------------------------------------- a peer over a real ledger


class LedgerPeer:
    """The real chaincode path over a real channel database, with `submit`/`evaluate`.

    The surface of the SDK scenarios' `Harness`: `submit` commits the writes of a
    successful transaction as its own block (public, history, hashed and private
    state), `evaluate` does not. Chaincodes run as real processes started by the
    peer's `ChaincodeLauncher`; any chaincode error counts as status 500.
    """

    def __init__(self, db_path: Path, chaincodes: Mapping[str, ChaincodeInfo]) -> None:
        self.lifecycle = MutableLifecycle(chaincodes)
        self._db_path = db_path
        self._block = 0
        self.membership: Callable[[str, str], bool] | None = None
        """Which collections this peer holds (`TxSimulator`'s); None: every one."""

    async def start(self, *, tls: grpc.ServerCredentials | None = None) -> LedgerPeer:
        """Serve Register on 127.0.0.1 (over TLS with `tls`) and open the ledger."""
        conn = open_channel_db(self._db_path)
        pvtdata.ensure(conn)
        self._conn = conn
        self.snapshots = Snapshots(self._db_path)
        self.registry = ChaincodeRegistry()
        self.executor = ChaincodeExecutor(
            self.registry, self.lifecycle, startup_timeout_s=STARTUP_TIMEOUT_S
        )
        self.launcher = ChaincodeLauncher(self.registry, backoff_initial_s=0.05)
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        add_chaincode_support(
            self.server, ChaincodeSupportService(self.registry, invoker=self.executor)
        )
        if tls is None:
            port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            port = self.server.add_secure_port("127.0.0.1:0", tls)
        self.address = f"127.0.0.1:{port}"
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.launcher.stop_all()
        await self.registry.close_all("test over")
        await self.server.stop(None)
        self.snapshots.close()
        self._conn.close()

    async def submit(
        self,
        function: str,
        *args: str | bytes,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
        is_init: bool = False,
    ) -> InvocationResult:
        return await self._invoke(
            function, args, chaincode, creator, transient, is_init=is_init, commit=True
        )

    async def evaluate(
        self,
        function: str,
        *args: str | bytes,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
    ) -> InvocationResult:
        return await self._invoke(
            function, args, chaincode, creator, transient, is_init=False, commit=False
        )

    async def _invoke(
        self,
        function: str,
        args: Sequence[str | bytes],
        chaincode: str | None,
        creator: SerializedIdentity | None,
        transient: Mapping[str, bytes] | None,
        *,
        is_init: bool,
        commit: bool,
    ) -> InvocationResult:
        identity = creator or make_identity()
        created = create_proposal(
            channel_id=CHANNEL,
            chaincode_name=chaincode or self.lifecycle.default,
            args=[
                function.encode(),
                *(a.encode() if isinstance(a, str) else a for a in args),
            ],
            creator=serialize_identity(identity.mspid, identity.id_bytes),
            transient=transient,
            is_init=is_init,
        )
        signed = sign_proposal(created.proposal_bytes, lambda message: b"unchecked")
        parsed = parse_signed_proposal(signed)
        simulator = open_simulator(
            self.snapshots,
            channel_id=CHANNEL,
            tx_id=parsed.tx_id,
            membership=self.membership,
        )
        try:
            result = await self.executor.execute(parsed, simulator)
        except ChaincodeError as error:
            return InvocationResult(parsed.tx_id, ChaincodeResponse(500, str(error)))
        finally:
            simulator.done()
        if commit and result.response.status < 400:
            self._commit(parsed, result.simulation)
        event = None
        if result.events:
            decoded = chaincode_event_pb2.ChaincodeEvent.FromString(result.events)
            event = Event(decoded.event_name, decoded.payload)
        return InvocationResult(parsed.tx_id, result.response, event)

    def _commit(self, parsed: ParsedProposal, simulation: SimulationResults) -> None:
        self._block += 1
        version = Version(self._block, 0)
        stamp = parsed.channel_header.timestamp
        assert stamp is not None
        updates = _BlockWrites(
            version, parsed.tx_id, Timestamp(stamp.seconds, stamp.nanos)
        )
        updates.add_public(simulation.public_rwset)
        updates.add_private(simulation.private_rwset)
        with transaction(self._conn):
            updates.write(self._conn)
            write_savepoint(self._conn, version)


class MutableLifecycle:
    """A `Lifecycle` whose definitions a test may change; the first one is the default."""

    def __init__(self, chaincodes: Mapping[str, ChaincodeInfo]) -> None:
        self.chaincodes = dict(chaincodes)
        self.default = next(iter(self.chaincodes), "")

    def chaincode_info(
        self, channel_id: str, chaincode_name: str, simulator: TxSimulator
    ) -> ChaincodeInfo:
        return StaticLifecycle(self.chaincodes).chaincode_info(
            channel_id, chaincode_name, simulator
        )


class _BlockWrites:
    """The writes of one committed transaction, as the ledger's update batches."""

    def __init__(self, version: Version, tx_id: str, timestamp: Timestamp) -> None:
        self.version = version
        self.state = UpdateBatch()
        self.history = HistoryBatch()
        self.hashed = HashedUpdateBatch()
        self.private = PrivateUpdateBatch()
        self._tx_id = tx_id
        self._timestamp = timestamp

    def add_public(self, data: bytes) -> None:
        for ns in rwset_pb2.TxReadWriteSet.FromString(data).ns_rwset:
            kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
            for write in kv.writes:
                if write.is_delete:
                    self.state.delete(ns.namespace, write.key, self.version)
                else:
                    self.state.put(ns.namespace, write.key, write.value, self.version)
            for metadata in kv.metadata_writes:
                entries = {entry.name: entry.value for entry in metadata.entries}
                self.state.put_metadata(
                    ns.namespace, metadata.key, entries, self.version
                )
            self.history.add(
                block_num=self.version.block_num,
                tx_num=0,
                tx_id=self._tx_id,
                timestamp=self._timestamp,
                writes=[
                    KeyWrite(ns.namespace, w.key, None if w.is_delete else w.value)
                    for w in kv.writes
                ],
            )
            for coll in ns.collection_hashed_rwset:
                self._add_hashed(ns.namespace, coll)

    def _add_hashed(
        self, ns: str, coll: rwset_pb2.CollectionHashedReadWriteSet
    ) -> None:
        hashed = kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset)
        name = coll.collection_name
        for write in hashed.hashed_writes:
            if write.is_purge:
                self.hashed.purge(ns, name, write.key_hash, self.version)
            elif write.is_delete:
                self.hashed.delete(ns, name, write.key_hash, self.version)
            else:
                self.hashed.put(
                    ns,
                    name,
                    write.key_hash,
                    value_hash=write.value_hash,
                    version=self.version,
                )

    def add_private(self, data: bytes) -> None:
        if not data:
            return
        for ns in rwset_pb2.TxPvtReadWriteSet.FromString(data).ns_pvt_rwset:
            for coll in ns.collection_pvt_rwset:
                kv = kv_rwset_pb2.KVRWSet.FromString(coll.rwset)
                for write in kv.writes:
                    if write.is_delete:
                        self.private.delete(
                            ns.namespace, coll.collection_name, write.key, self.version
                        )
                    else:
                        self.private.put(
                            ns.namespace,
                            coll.collection_name,
                            write.key,
                            write.value,
                            self.version,
                        )

    def write(self, conn: sqlite3.Connection) -> None:
        write_updates(conn, self.state)
        write_history(conn, self.history)
        apply_hashed_updates(conn, self.hashed)
        apply_private_updates(conn, self.private)


# ---------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class Pki:
    """A test CA with a server and a client certificate (PEM), valid for 127.0.0.1."""

    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    @classmethod
    def create(cls) -> Pki:
        now = datetime.now(UTC)
        start, end = now - timedelta(days=1), now + timedelta(days=1)
        ca_key = PrivateKey.generate()
        ca = issue_ca(
            Subject("tlsca.peer.test"), key=ca_key, not_before=start, not_after=end
        )
        keys = {name: PrivateKey.generate() for name in ("server", "client")}
        certs = {
            name: issue_certificate(
                Subject(f"{name}.peer.test"),
                public_key=keys[name].public_key,
                issuer_cert=ca,
                issuer_key=ca_key,
                san_dns=["localhost"],
                san_ips=["127.0.0.1"],
                ext_key_usage=[
                    ExtendedKeyUsage.SERVER_AUTH,
                    ExtendedKeyUsage.CLIENT_AUTH,
                ],
                not_before=start,
                not_after=end,
            )
            for name in keys
        }
        return cls(
            ca=ca.pem,
            server_cert=certs["server"].pem,
            server_key=keys["server"].to_pem(),
            client_cert=certs["client"].pem,
            client_key=keys["client"].to_pem(),
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server TLS that requires client certificates from the CA (mutual TLS)."""
        return grpc.ssl_server_credentials(
            [(self.server_key, self.server_cert)],
            root_certificates=self.ca,
            require_client_auth=True,
        )

    def client_files(self, folder: Path, *, base64_client: bool) -> PeerTlsFiles:
        """The files a launched chaincode reads; Node wants the client pair in base64."""
        folder.mkdir(parents=True, exist_ok=True)

        def write(name: str, data: bytes, encode: bool) -> str:
            path = folder / name
            path.write_bytes(base64.b64encode(data) if encode else data)
            return str(path)

        return PeerTlsFiles(
            root_cert_file=write("ca.pem", self.ca, False),
            client_key_file=write("client.key", self.client_key, base64_client),
            client_cert_file=write("client.crt", self.client_cert, base64_client),
        )
