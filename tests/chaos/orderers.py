"""Orderers on the etcd backend for tests: a channel, a ChainSupport on a block store, nodes.

`Consortium.create(folder)` makes the hospital example's crypto material and channel
config once; `consortium.channel(id, ...)` a genesis block with the batch settings a
test wants. `StoreSupport` is
a minimal ChainSupport over `common.blockstore` + `common.protoutil` (and the real
block cutter), standing in for the registrar's. `OrdererNode.start(...)`
runs one orderer in this process: its block store, an `EtcdBackend` chain and a gRPC
server with the Forward service on 127.0.0.1; `crash()` drops everything without a
goodbye (no lease revocation, no graceful gRPC shutdown), as a SIGKILL would. Several
of them: tests.chaos.cluster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import grpc.aio

from common.blockstore import BlockStore
from common.channelconfig import ChannelConfig
from common.channelconfig import keys as config_keys
from common.crypto.signing import PrivateKey
from common.errors import BlockRejected, WireError
from common.protoutil import (
    channel_header_bytes,
    compute_tx_id,
    header_bytes,
    new_block,
    parse_envelope,
    payload_bytes,
    serialize_identity,
    sign_block,
    sign_envelope,
    signature_header_bytes,
)
from network.cryptogen import CryptoLayout, generate_crypto
from network.genesis import build_channel_config, build_genesis_block
from network.spec import load_spec
from orderer.blockcutter import BlockCutter
from orderer.consensus.etcd import EtcdBackend, EtcdChain
from orderer.consensus.etcd_follow import BlockPuller
from orderer.consensus.etcd_settings import EtcdSettings
from protos.common import common_pb2, configtx_pb2
from protos.orderer import configuration_pb2 as orderer_config_pb2

EXAMPLE = (
    Path(__file__).parents[2] / "network" / "examples" / "hospital-consortium.yaml"
)
CHANNEL = "medical-records"
ORDERER_MSP = "HealthCommissionMSP"
CLIENT_MSP = "HospitalAMSP"


@dataclass(frozen=True)
class Identity:
    """A signing identity: its key and its serialized `msp.SerializedIdentity`."""

    key: PrivateKey
    creator: bytes

    @classmethod
    def load(cls, mspid: str, signcert: Path, private_key: Path) -> Identity:
        return cls(
            key=PrivateKey.from_pem(private_key.read_bytes()),
            creator=serialize_identity(mspid, signcert.read_bytes()),
        )


@dataclass(frozen=True)
class Consortium:
    """The hospital example's crypto material and channel config, made once."""

    config: configtx_pb2.Config
    orderers: tuple[Identity, ...]
    client: Identity
    crypto: CryptoLayout

    @classmethod
    def create(cls, folder: Path) -> Consortium:
        spec = load_spec(EXAMPLE)
        crypto = generate_crypto(spec, folder)
        return cls(
            config=build_channel_config(spec, CHANNEL, crypto),
            orderers=tuple(_orderer_identity(crypto, index) for index in range(3)),
            client=_client_identity(crypto),
            crypto=crypto,
        )

    def orderer_files(self, index: int) -> tuple[Path, Path]:
        """(signing certificate, private key) files of orderer `index`."""
        node = self.crypto.organization(ORDERER_MSP).orderer(f"orderer{index}")
        return node.signcert, node.private_key

    def channel(
        self,
        channel_id: str = CHANNEL,
        *,
        max_message_count: int = 50,
        batch_timeout: str = "100ms",
    ) -> ChannelFixture:
        """A genesis block for `channel_id` with these batch settings."""
        config = configtx_pb2.Config()
        config.CopyFrom(self.config)
        values = config.channel_group.groups[config_keys.ORDERER].values
        batch_size = orderer_config_pb2.BatchSize()
        batch_size.ParseFromString(values[config_keys.BATCH_SIZE].value)
        batch_size.max_message_count = max_message_count
        values[config_keys.BATCH_SIZE].value = batch_size.SerializeToString()
        values[config_keys.BATCH_TIMEOUT].value = orderer_config_pb2.BatchTimeout(
            timeout=batch_timeout
        ).SerializeToString()
        genesis = build_genesis_block(config, channel_id)
        return ChannelFixture(
            channel_id=channel_id,
            genesis=genesis,
            config=ChannelConfig.from_block(genesis),
            orderers=self.orderers,
            client=self.client,
        )


@dataclass(frozen=True)
class ChannelFixture:
    """A channel's genesis block, its parsed config, and the identities to use."""

    channel_id: str
    genesis: common_pb2.Block
    config: ChannelConfig
    orderers: tuple[Identity, ...]
    client: Identity

    def envelope(self, payload: bytes) -> tuple[bytes, str]:
        """A signed ENDORSER_TRANSACTION envelope carrying `payload`, and its tx id."""
        nonce = os.urandom(24)
        tx_id = compute_tx_id(nonce=nonce, creator=self.client.creator)
        header = header_bytes(
            channel_header=channel_header_bytes(
                header_type=common_pb2.ENDORSER_TRANSACTION,
                channel_id=self.channel_id,
                tx_id=tx_id,
            ),
            signature_header=signature_header_bytes(
                creator=self.client.creator, nonce=nonce
            ),
        )
        payload = payload_bytes(header=header, data=payload)
        envelope = sign_envelope(payload, self.client.key.sign)
        return envelope.SerializeToString(), tx_id


class StoreSupport:
    """A ChainSupport for one orderer and channel, over its own block store."""

    def __init__(
        self, store: BlockStore, *, config: ChannelConfig, identity: Identity
    ) -> None:
        self.channel_id = config.channel_id
        self.store = store
        self.config = config
        self.identity = identity

    def height(self) -> int:
        return self.store.height

    def last_block_header_hash(self) -> bytes:
        return bytes(self.store.blockchain_info().currentBlockHash)

    def channel_config(self) -> ChannelConfig:
        return self.config

    def new_block_cutter(self) -> BlockCutter:
        return BlockCutter(self.config.batch_size)

    def create_next_block(self, envelopes: Sequence[bytes]) -> common_pb2.Block:
        return new_block(
            self.store.height,
            previous_hash=self.last_block_header_hash(),
            envelopes=envelopes,
        )

    def sign_block(self, block: common_pb2.Block) -> common_pb2.Block:
        return sign_block(
            block,
            signer=self.identity.key.sign,
            creator=self.identity.creator,
            last_config_index=0,
        )

    def append_block(
        self,
        block: common_pb2.Block,
        *,
        tx_ids: Sequence[str] | None = None,
        serialized: bytes | None = None,
    ) -> None:
        number = block.header.number
        if number < self.store.height:
            stored = self.store.block_bytes(number)
            offered = block.SerializeToString()
            if stored != offered:
                raise BlockRejected(
                    "differs from the stored block",
                    block_number=number,
                    expected=stored,
                    actual=offered,
                )
            return
        self.store.append(block, tx_ids=tx_ids)

    def is_config(self, envelope: bytes) -> bool:
        try:
            return parse_envelope(envelope).header_type == common_pb2.CONFIG
        except WireError:
            return False


@dataclass
class OrdererNode:
    """One in-process orderer: block store, etcd chain and Forward server."""

    name: str
    folder: Path
    store: BlockStore
    backend: EtcdBackend
    chain: EtcdChain
    server: grpc.aio.Server
    running: bool = field(default=True)

    @classmethod
    async def start(
        cls,
        name: str,
        folder: Path,
        *,
        channel: ChannelFixture,
        identity: Identity,
        endpoints: Sequence[str],
        settings: EtcdSettings | None = None,
        block_puller: BlockPuller | None = None,
    ) -> OrdererNode:
        """Open (or reopen) the store in `folder`, join with the genesis block, start."""
        store = BlockStore.open(folder)
        if store.height == 0:
            store.append(channel.genesis)
        server = grpc.aio.server()
        port = server.add_insecure_port("127.0.0.1:0")
        base = settings or EtcdSettings(
            endpoints=(), orderer_name="", forward_address=""
        )
        backend = EtcdBackend(
            replace(
                base,
                endpoints=tuple(endpoints),
                orderer_name=name,
                forward_address=f"127.0.0.1:{port}",
            ),
            block_puller=block_puller,
        )
        server.add_generic_rpc_handlers(backend.rpc_handlers())
        await server.start()
        support = StoreSupport(store, config=channel.config, identity=identity)
        chain = backend.new_chain(support)
        await chain.start()
        return cls(name, folder, store, backend, chain, server)

    async def stop(self) -> None:
        """Graceful: resign, drain the server, close the store."""
        if not self.running:
            return
        self.running = False
        await self.chain.stop()
        await self.server.stop(grace=1)
        await self.backend.close()
        self.store.close()

    async def crash(self) -> None:
        """Abrupt: no resignation (the lease expires), connections cut at once."""
        if not self.running:
            return
        self.running = False
        await self.chain.stop(resign=False)
        await self.server.stop(grace=None)
        await self.backend.close()
        self.store.close()


def block_files(folder: Path) -> dict[str, bytes]:
    """The block files of a store folder by name (the index is not compared)."""
    return {path.name: path.read_bytes() for path in sorted(folder.glob("blockfile_*"))}


def _orderer_identity(crypto: CryptoLayout, index: int) -> Identity:
    node = crypto.organization(ORDERER_MSP).orderer(f"orderer{index}")
    return Identity.load(ORDERER_MSP, node.signcert, node.private_key)


def _client_identity(crypto: CryptoLayout) -> Identity:
    user = crypto.organization(CLIENT_MSP).user("Admin")
    return Identity.load(CLIENT_MSP, user.signcert, user.private_key)
