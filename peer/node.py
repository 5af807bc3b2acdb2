"""The peer process: endorser, Deliver, admin API, chaincode support, block pullers.

`PeerNode(config)` is a `common.node.Node`. `start()` loads the signing identity and
the local MSP, reopens every joined channel, binds the gRPC listener (Endorser,
Deliver, admin, and ChaincodeSupport unless `chaincode_listen` gives it a listener of
its own), starts the configured chaincodes (launched processes, or dialled servers)
and returns {"grpc": host:port, "chaincode": host:port}, plus "operations" when the
config enables the operations endpoint (`peer.operations`). Its one job runs a block
puller per channel; joining a channel adds one. `stop()` shuts down in order: the
operations endpoint closes, Deliver waits end, the listeners stop accepting and drain
for up to `grace_s`, the pullers stop and in-flight commits finish, chaincodes stop,
the ledgers close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

import grpc

from common.deliver import DeliverSettings
from common.errors import PolicyError
from common.msp import Msp, MspManager, SigningIdentity, load_signing_identity
from common.node_setup import bind_listener, new_server
from common.operations import OperationsServer
from common.protoutil import ParsedProposal, proposal_signed_data
from common.tls import cert_hash
from peer.blockpuller import BlockPuller, PullerGroup, PullerSettings
from peer.chaincode.execute import ChaincodeExecutor
from peer.chaincode.launcher import ChaincodeLauncher, LaunchSpec
from peer.chaincode.registry import ChaincodeRegistry
from peer.chaincode.support import (
    SERVER_OPTIONS,
    ChaincodeService,
    ChaincodeSupportService,
    ServiceEndpoint,
    add_chaincode_support,
)
from peer.channels import Channels, PeerChannel
from peer.committer import ParallelVerifier
from peer.config import ChaincodePackage, PeerConfig
from peer.endorser import Endorser
from peer.errors import AccessDenied, ChaincodeError
from peer.lifecycle import DefinitionReader
from peer.lifecycle.runtime import InstalledChaincodes
from peer.lifecycle.store import LIFECYCLE_FOLDER, PackageStore
from peer.lifecycle_source import CommittedLifecycle
from peer.operations import peer_operations
from peer.privdata.access import AccessChannel, CollectionAccessFactory
from peer.privdata.directory import PeerDirectory
from peer.privdata.dissemination import Disseminator
from peer.privdata.pull import PrivateDataPuller, PullingTarget
from peer.privdata.reconcile import Reconciler
from peer.privdata.service import PrivateDataService
from peer.scc import ConfigurationSystemChaincode, QuerySystemChaincode
from peer.service import AdminService, DeliverService, EndorserService
from peer.simulator import TxSimulator
from protos.common import common_pb2

__all__ = ["PeerNode"]

_LOG = logging.getLogger(__name__)

DEFAULT_PULLER_SETTINGS = PullerSettings()


class PeerNode:
    """One peer; see the module docstring for the start and stop order."""

    def __init__(
        self,
        config: PeerConfig,
        *,
        puller_settings: PullerSettings = DEFAULT_PULLER_SETTINGS,
        verify_workers: int | None = None,
    ) -> None:
        self.config = config
        self._puller_settings = puller_settings
        self._verify_workers = verify_workers
        self._signer: SigningIdentity | None = None
        self._channels: Channels | None = None
        self._endorser: Endorser | None = None
        self._registry = ChaincodeRegistry()
        self._launcher = ChaincodeLauncher(self._registry)
        self._services: list[ChaincodeService] = []
        self._pullers = PullerGroup()
        self._servers: list[grpc.aio.Server] = []
        self._verifier: ParallelVerifier | None = None
        self._executor: ChaincodeExecutor | None = None
        self._lifecycle: CommittedLifecycle | None = None
        self._installed: InstalledChaincodes | None = None
        self._endorser_service: EndorserService | None = None
        self._directory: PeerDirectory | None = None
        self._pvt_puller: PrivateDataPuller | None = None
        self._reconciler: Reconciler | None = None
        self._operations: OperationsServer | None = None
        self._stopped = False

    # Access for tests and tools

    @property
    def channels(self) -> Channels:
        assert self._channels is not None, "peer not started"
        return self._channels

    @property
    def endorser(self) -> Endorser:
        assert self._endorser is not None, "peer not started"
        return self._endorser

    @property
    def registry(self) -> ChaincodeRegistry:
        return self._registry

    @property
    def launcher(self) -> ChaincodeLauncher:
        return self._launcher

    @property
    def pullers(self) -> PullerGroup:
        return self._pullers

    @property
    def installed_chaincodes(self) -> InstalledChaincodes:
        assert self._installed is not None, "peer not started"
        return self._installed

    @property
    def reconciler(self) -> Reconciler:
        assert self._reconciler is not None, "peer not started"
        return self._reconciler

    # Node

    async def start(self) -> dict[str, str]:
        config = self.config
        self._signer = load_signing_identity(config.msp_dir, mspid=config.mspid)
        local_msp = Msp.from_folder(config.msp_dir, mspid=config.mspid)
        self._verifier = ParallelVerifier(workers=self._verify_workers)
        channels = Channels(config.storage, mspid=config.mspid, verifier=self._verifier)
        self._channels = channels
        disseminator = self._start_private_data(channels)
        for channel in await channels.open_all():
            self._pullers.add(self._new_puller(channel))
        installed = self._new_installed(channels)
        executor = self._new_executor(channels)
        self._endorser = Endorser(
            channels=channels.get,
            local_msp=MspManager([local_msp]),
            signer=self._signer,
            runner=executor,
            definitions=self._lifecycle_source(),
            system_chaincodes={
                "qscc": QuerySystemChaincode(channels),
                "cscc": ConfigurationSystemChaincode(
                    channels, local_msp=MspManager([local_msp])
                ),
                "_lifecycle": installed.system_chaincode(local_msp),
            },
            private_data=disseminator.hook,
        )
        addresses = await self._start_servers(channels, local_msp, executor)
        installed.bind(peer_address=addresses["chaincode"], invoker=executor)
        self._start_chaincodes(addresses["chaincode"], executor)
        if config.operations is not None:
            self._operations = peer_operations(config.operations, channels)
            addresses["operations"] = await self._operations.start()
        _LOG.info(
            "peer started name=%s grpc=%s chaincode=%s channels=%s",
            config.name,
            addresses["grpc"],
            addresses["chaincode"],
            ",".join(channels.names()) or "-",
        )
        return addresses

    def jobs(self) -> Sequence[Coroutine[Any, Any, None]]:
        return (
            self._pullers.run(),
            self.reconciler.run(),
            self.installed_chaincodes.indexes.run(),
        )

    async def stop(self, grace_s: float) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._operations is not None:
            await self._operations.stop()
        channels = self._channels
        if channels is not None:
            channels.close_feeds()
        # Stop accepting at once; chaincode streams are in-flight calls too, so they
        # end only after the endorsements that need them have drained.
        await asyncio.gather(
            *(server.stop(grace_s) for server in self._servers),
            self._stop_chaincodes(grace_s),
        )
        await self._pullers.stop(grace_s)
        if channels is not None:
            for channel in channels.all():
                await channel.wait_idle()
        if self._installed is not None:
            await self._installed.indexes.stop()
        if self._verifier is not None:
            self._verifier.close()
        if self._directory is not None:
            await self._directory.close()
        if channels is not None:
            channels.close()
        _LOG.info("peer stopped name=%s", self.config.name)

    async def _stop_chaincodes(self, grace_s: float) -> None:
        """Once in-flight endorsements are done (or `grace_s` passed), end chaincodes."""
        if self._endorser_service is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self._endorser_service.wait_idle()
        for service in self._services:
            await service.stop()
        if self._installed is not None:
            await self._installed.stop()
        await self._launcher.stop_all()
        await self._registry.close_all("the peer is stopping")

    async def join(self, block: common_pb2.Block) -> PeerChannel:
        """Join a channel from its genesis block and start pulling its blocks.

        Raises:
            JoinRejected, ChannelExists: see `Channels.join`.
        """
        channel = await self.channels.join(block)
        self._pullers.add(self._new_puller(channel))
        self.installed_chaincodes.indexes.add(channel)
        return channel

    # Parts

    def _start_private_data(self, channels: Channels) -> Disseminator:
        """The peer directory, pull at commit, reconciliation and dissemination."""
        assert self._signer is not None
        config = self.config
        self._directory = PeerDirectory(
            config.gossip,
            mspid=config.mspid,
            tls=config.tls,
            max_message_bytes=config.limits.max_message_bytes,
        )
        self._pvt_puller = PrivateDataPuller(
            signer=self._signer, directory=self._directory, settings=config.gossip
        )
        self._reconciler = Reconciler(
            channels,
            puller=self._pvt_puller,
            interval_s=config.gossip.reconcile_interval_s,
        )
        return Disseminator(
            signer=self._signer,
            directory=self._directory,
            push_timeout_s=config.gossip.push_timeout_s,
            loop=asyncio.get_running_loop(),
        )

    def _new_executor(self, channels: Channels) -> ChaincodeExecutor:
        settings = self.config.chaincodes
        self._lifecycle = CommittedLifecycle(
            readers=self._definition_reader,
            package_ids={
                name: package.package_id for name, package in settings.packages.items()
            },
            installed=self._installed.package_id if self._installed else None,
        )
        self._executor = ChaincodeExecutor(
            self._registry,
            self._lifecycle,
            execute_timeout_s=settings.execute_timeout_s,
            startup_timeout_s=settings.startup_timeout_s,
            simulators=self._simulator_on,
            call_check=self._check_chaincode_call,
            collection_access=CollectionAccessFactory(self._access_channel),
        )
        return self._executor

    def _new_installed(self, channels: Channels) -> InstalledChaincodes:
        """Packages installed through `_lifecycle`, under `<storage>/lifecycle/`."""
        self._installed = InstalledChaincodes(
            store=PackageStore(self.config.storage / LIFECYCLE_FOLDER),
            config=self.config,
            channels=channels,
            launcher=self._launcher,
            registry=self._registry,
        )
        return self._installed

    def _lifecycle_source(self) -> CommittedLifecycle:
        assert self._lifecycle is not None, "executor not built"
        return self._lifecycle

    def _definition_reader(self, channel_id: str) -> DefinitionReader | None:
        channel = self.channels.get(channel_id)
        return None if channel is None else channel.ledger

    def _access_channel(self, channel_id: str) -> AccessChannel | None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return None
        return AccessChannel(msps=channel.config.msp_manager, reader=channel.ledger)

    def _simulator_on(self, channel_id: str, tx_id: str) -> TxSimulator:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise ChaincodeError(f"failed to find the ledger of channel {channel_id}")
        return channel.open_simulator(tx_id)

    def _check_chaincode_call(
        self, channel_id: str, proposal: ParsedProposal | None
    ) -> None:
        """The ACL of calling chaincode on another channel (`peer/ChaincodeToChaincode`)."""
        channel = self.channels.get(channel_id)
        if channel is None:
            raise ChaincodeError(f"failed to find the ledger of channel {channel_id}")
        if proposal is None:
            return
        try:
            channel.check_signed_acl(
                "peer/ChaincodeToChaincode", proposal_signed_data(proposal)
            )
        except PolicyError as error:
            raise AccessDenied(
                f"access denied for [peer/ChaincodeToChaincode][{channel_id}]: {error}"
            ) from None

    async def _start_servers(
        self, channels: Channels, local_msp: Msp, executor: ChaincodeExecutor
    ) -> dict[str, str]:
        config = self.config
        limits = config.limits
        deliver_settings = DeliverSettings(
            time_window_s=limits.deliver_time_window_s,
            mutual_tls=config.tls is not None and config.tls.mutual,
        )
        assert self._signer is not None
        self._endorser_service = EndorserService(self.endorser)
        handlers: list[grpc.GenericRpcHandler[Any, Any]] = [
            self._endorser_service.rpc_handler(),
            DeliverService(channels, settings=deliver_settings).rpc_handler(),
            AdminService(
                channels,
                msp=local_msp,
                join=self.join,
                time_window_s=limits.deliver_time_window_s,
            ).rpc_handler(),
            PrivateDataService(
                channels.get,
                signer=self._signer,
                time_window_s=limits.deliver_time_window_s,
            ).rpc_handler(),
        ]
        support = ChaincodeSupportService(self._registry, invoker=executor)
        main = self._new_server()
        main.add_generic_rpc_handlers(handlers)
        grpc_address = bind_listener(main, config.listen, config.tls)
        assert self._directory is not None
        self._directory.set_own_address(grpc_address)
        chaincode_address = grpc_address
        if config.chaincode_listen is None:
            add_chaincode_support(main, support)
        else:
            chaincode_server = self._new_server()
            add_chaincode_support(chaincode_server, support)
            chaincode_address = bind_listener(
                chaincode_server, config.chaincode_listen, config.tls
            )
        for server in self._servers:
            await server.start()
        return {"grpc": grpc_address, "chaincode": chaincode_address}

    def _new_server(self) -> grpc.aio.Server:
        limit = self.config.limits.max_message_bytes
        server = new_server(limit, options=SERVER_OPTIONS)
        self._servers.append(server)
        return server

    def _start_chaincodes(
        self, chaincode_address: str, executor: ChaincodeExecutor
    ) -> None:
        for package in self.config.chaincodes.packages.values():
            if package.launch:
                self._launcher.launch(self._launch_spec(package, chaincode_address))
            else:
                service = ChaincodeService(
                    package.package_id,
                    _service_endpoint(package),
                    self._registry,
                    invoker=executor,
                )
                service.start()
                self._services.append(service)

    def _launch_spec(self, package: ChaincodePackage, peer_address: str) -> LaunchSpec:
        """The configured command with Fabric's environment for dialling the peer."""
        env = {
            "CORE_PEER_ADDRESS": peer_address,
            "CORE_CHAINCODE_ID_NAME": package.package_id,
            "CORE_PEER_LOCALMSPID": self.config.mspid,
            "CORE_PEER_TLS_ENABLED": "false" if self.config.tls is None else "true",
        }
        tls = self.config.tls
        if tls is not None:
            root = self.config.chaincodes.peer_tls_ca or (
                tls.root_cas[0] if tls.root_cas else None
            )
            if root is not None:
                env["CORE_PEER_TLS_ROOTCERT_FILE"] = str(root)
        return LaunchSpec(package.package_id, package.launch, env=env)

    def _new_puller(self, channel: PeerChannel) -> BlockPuller:
        assert self._signer is not None
        orderers = self.config.orderers
        client_hash = None
        if orderers.client_auth and self.config.tls is not None:
            assert self.config.tls.cert is not None
            client_hash = cert_hash(self.config.tls.cert.read_bytes())

        def endpoints() -> list[str]:
            overrides = orderers.address_overrides
            return [
                overrides.get(endpoint, endpoint)
                for endpoint in channel.config.orderer_endpoints
            ]

        assert self._pvt_puller is not None
        target = PullingTarget(
            channel, puller=self._pvt_puller, mspid=self.config.mspid
        )
        return BlockPuller(
            target,
            signer=self._signer,
            endpoints=endpoints,
            dial=lambda address: self._dial_orderer(channel, address),
            tls_cert_hash=client_hash,
            settings=self._puller_settings,
        )

    def _dial_orderer(self, channel: PeerChannel, address: str) -> grpc.aio.Channel:
        limit = self.config.limits.max_message_bytes
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ]
        if not self.config.orderer_tls:
            return grpc.aio.insecure_channel(address, options=options)
        return grpc.aio.secure_channel(
            address, self._orderer_credentials(channel), options=options
        )

    def _orderer_credentials(self, channel: PeerChannel) -> grpc.ChannelCredentials:
        """Trust the channel's ordering organisations' TLS CAs (and configured extras)."""
        roots: list[bytes] = []
        for org in channel.config.orderer_orgs.values():
            msp_config = org.msp.to_config()
            roots.extend(msp_config.tls_root_certs)
            roots.extend(msp_config.tls_intermediate_certs)
        roots.extend(path.read_bytes() for path in self.config.orderers.tls_root_cas)
        key = cert = None
        tls = self.config.tls
        if self.config.orderers.client_auth and tls is not None:
            assert tls.key is not None
            assert tls.cert is not None
            key, cert = tls.key.read_bytes(), tls.cert.read_bytes()
        return grpc.ssl_channel_credentials(
            root_certificates=b"".join(roots) or None,
            private_key=key,
            certificate_chain=cert,
        )


def _service_endpoint(package: ChaincodePackage) -> ServiceEndpoint:
    assert package.address is not None
    tls = package.tls
    if tls is None:
        return ServiceEndpoint(package.address)
    return ServiceEndpoint(
        package.address,
        root_cert=tls.root_cert.read_bytes(),
        client_cert=tls.client_cert.read_bytes() if tls.client_cert else None,
        client_key=tls.client_key.read_bytes() if tls.client_key else None,
    )
