"""Which installed package serves a committed chaincode on this peer, and starting it.

Execute phase, before a chaincode runs. As in Fabric, a peer serves a committed
definition with the package its own organisation approved for it (the
`chaincode-sources` entry of its implicit collection, read from committed private
state). `InstalledChaincodes.package_id` finds that package and makes sure it runs:

    python   launched: `python -m chaincode serve --module M` in the unpacked `src/`
    node     launched: `fabric-chaincode-node start` in the unpacked `src/`
    ccaas    dialled at the `address` of its `connection.json`

Launched processes dial the peer's chaincode listener and are supervised (restarted)
by the peer's `ChaincodeLauncher`; dialled servers are redialled until `stop`.
`indexes` (`peer.lifecycle.index_deployer`) creates the indexes a package ships once
it serves a committed definition (`served_deployments`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from google.protobuf.message import DecodeError

from common.channelconfig import parse_go_duration
from common.msp import Msp
from peer.chaincode.handler import Invoker
from peer.chaincode.launcher import (
    ChaincodeLauncher,
    LaunchSpec,
    node_launch_spec,
    python_launch_spec,
)
from peer.chaincode.registry import ChaincodeRegistry
from peer.chaincode.support import ChaincodeService, ServiceEndpoint
from peer.channels import PeerChannel
from peer.config import PeerConfig
from peer.errors import (
    ChaincodeDefinitionError,
    ChaincodeError,
    LifecycleError,
    PackageNotFound,
)
from peer.ledger.ledger import ChannelLedger
from peer.lifecycle.approvals import CommittedPrivateData, approved_package_id
from peer.lifecycle.definitions import (
    DEFINITION_TYPE,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    metadata_key,
    read_definition,
)
from peer.lifecycle.index_deployer import IndexDeployer
from peer.lifecycle.indexes import IndexDeployment
from peer.lifecycle.package import CONNECTION_FILE, SOURCE_FOLDER, parse_connection
from peer.lifecycle.scc import LifecycleSystemChaincode
from peer.lifecycle.store import InstalledPackage, PackageStore
from protos.peer.lifecycle import db_pb2

__all__ = ["InstalledChaincodes"]

_LOG = logging.getLogger(__name__)

_METADATA_PREFIX = metadata_key("")
DEFAULT_DIAL_TIMEOUT_S = 10.0


class ChannelSource(Protocol):
    """The peer's joined channels (`peer.channels.Channels`)."""

    def get(self, channel_id: str) -> PeerChannel | None: ...
    def all(self) -> Iterable[PeerChannel]: ...


class InstalledChaincodes:
    """Packages installed through `_lifecycle`, run for the definitions they serve."""

    def __init__(
        self,
        *,
        store: PackageStore,
        config: PeerConfig,
        channels: ChannelSource,
        launcher: ChaincodeLauncher,
        registry: ChaincodeRegistry,
    ) -> None:
        self.store = store
        self._config = config
        self._channels = channels
        self._launcher = launcher
        self._registry = registry
        self._peer_address: str | None = None
        self._invoker: Invoker | None = None
        self._services: dict[str, ChaincodeService] = {}
        self._approvals: dict[tuple[str, str, int], tuple[int, str]] = {}
        self.indexes = IndexDeployer(
            mspid=config.mspid,
            channels=channels,
            store=store,
            served=self.served_deployments,
        )

    def system_chaincode(self, local_msp: Msp) -> LifecycleSystemChaincode:
        """`_lifecycle` over this store, answering references from these channels."""
        return LifecycleSystemChaincode(
            mspid=self._config.mspid,
            local_msp=local_msp,
            store=self.store,
            channels=self._channels,
            references=self.references,
            on_installed=self.indexes.installed,
        )

    def bind(self, *, peer_address: str, invoker: Invoker) -> None:
        """Where launched chaincode dials the peer, and who serves their calls."""
        self._peer_address = peer_address
        self._invoker = invoker

    def package_id(
        self, channel_id: str, definition: ChaincodeDefinition
    ) -> str | None:
        """The installed package serving `definition` here, started if need be.

        None when this peer's organisation approved no package for the definition or
        the package is not installed on this peer.

        Raises:
            ChaincodeError: the approval or the package cannot be read or started.
        """
        channel = self._channels.get(channel_id)
        if channel is None:
            return None
        package_id = self._approved(channel, definition)
        if not package_id:
            return None
        try:
            installed = self.store.get(package_id)
        except PackageNotFound:
            return None
        except LifecycleError as error:
            raise ChaincodeError(str(error)) from error
        self.ensure_running(installed)
        return package_id

    def ensure_running(self, installed: InstalledPackage) -> None:
        """Launch or dial the package unless that is already under way.

        Raises:
            ChaincodeError: the peer is not bound yet, or the package cannot be used.
        """
        package_id = installed.package_id
        if self._launcher.status(package_id) or package_id in self._services:
            return
        if self._peer_address is None:
            raise ChaincodeError("the peer's chaincode listener is not ready yet")
        try:
            if installed.type == "ccaas":
                self._dial(installed)
            else:
                self._launcher.launch(self._launch_spec(installed, self._peer_address))
        except LifecycleError as error:
            raise ChaincodeError(
                f"could not start chaincode {package_id}: {error}"
            ) from error
        _LOG.info("started chaincode package_id=%s type=%s", package_id, installed.type)

    def references(self, package_id: str) -> dict[str, list[tuple[str, str]]]:
        """{channel: [(name, version)]} of the committed definitions `package_id` serves.

        Blocks on the ledgers: call from a worker thread.
        """
        found: dict[str, list[tuple[str, str]]] = {}
        for channel in self._channels.all():
            for definition in _committed_definitions(channel.ledger):
                if self._approved(channel, definition) == package_id:
                    found.setdefault(channel.channel_id, []).append(
                        (definition.name, definition.version)
                    )
        return found

    def served_deployments(self, channel: PeerChannel) -> list[IndexDeployment]:
        """The committed definitions an installed package serves here, as index
        deployments (a definition whose approval cannot be read is logged, skipped).

        Blocks on the ledger: call from a worker thread.
        """
        found = []
        for definition in _committed_definitions(channel.ledger):
            try:
                package_id = self._approved(channel, definition)
                collections = definition.collection_configs()
            except (ChaincodeError, ChaincodeDefinitionError) as error:
                _LOG.error(
                    "no index deployment channel=%s chaincode=%s: %s",
                    channel.channel_id,
                    definition.name,
                    error,
                )
                continue
            if package_id and self._is_installed(channel, package_id):
                found.append(
                    IndexDeployment(
                        channel_id=channel.channel_id,
                        chaincode=definition.name,
                        sequence=definition.sequence,
                        package_id=package_id,
                        collections=frozenset(c.name for c in collections),
                    )
                )
        return found

    async def stop(self) -> None:
        """Stop dialling chaincode servers (launched processes are the launcher's)."""
        services, self._services = list(self._services.values()), {}
        for service in services:
            await service.stop()

    def _is_installed(self, channel: PeerChannel, package_id: str) -> bool:
        try:
            self.store.get(package_id)
        except PackageNotFound:
            return False
        except LifecycleError as error:
            _LOG.error(
                "no index deployment channel=%s package_id=%s: %s",
                channel.channel_id,
                package_id,
                error,
            )
            return False
        return True

    def _approved(self, channel: PeerChannel, definition: ChaincodeDefinition) -> str:
        # Approvals change only with a committed block: remember the answer per height
        # (read before the approval, so a block committed meanwhile forces a re-read),
        # which spares every proposal the private-state reads.
        key = (channel.channel_id, definition.name, definition.sequence)
        height = channel.height()
        cached = self._approvals.get(key)
        if cached is not None and cached[0] == height:
            return cached[1]
        try:
            package_id = approved_package_id(
                CommittedPrivateData(channel.ledger), self._config.mspid, definition
            )
        except LifecycleError as error:
            raise ChaincodeError(str(error)) from error
        self._approvals[key] = (height, package_id)
        return package_id

    def _launch_spec(
        self, installed: InstalledPackage, peer_address: str
    ) -> LaunchSpec:
        source = self.store.code_dir(installed.package_id) / SOURCE_FOLDER
        env = self._tls_env()
        if installed.type == "node":
            return node_launch_spec(
                installed.package_id,
                peer_address,
                source,
                msp_id=self._config.mspid,
                env=env,
            )
        return python_launch_spec(
            installed.package_id,
            peer_address,
            [installed.module],
            cwd=str(source),
            msp_id=self._config.mspid,
            env=env,
        )

    def _tls_env(self) -> dict[str, str]:
        """Fabric's TLS environment for dialling the peer (root CA only, as configured)."""
        tls = self._config.tls
        if tls is None:
            return {}
        env = {"CORE_PEER_TLS_ENABLED": "true"}
        root = self._config.chaincodes.peer_tls_ca or (
            tls.root_cas[0] if tls.root_cas else None
        )
        if root is not None:
            # Absolute: the chaincode runs in its package's folder, and peer.yaml's
            # paths are relative to where the peer was started from (`-c peer.yaml`).
            env["CORE_PEER_TLS_ROOTCERT_FILE"] = str(Path(root).absolute())
        return env

    def _dial(self, installed: InstalledPackage) -> None:
        code = self.store.code_dir(installed.package_id)
        endpoint = _endpoint(code / CONNECTION_FILE)
        service = ChaincodeService(
            installed.package_id, endpoint, self._registry, invoker=self._invoker
        )
        service.start()
        self._services[installed.package_id] = service


def _endpoint(path: Path) -> ServiceEndpoint:
    """The dialling endpoint of an unpacked `connection.json`."""
    try:
        info = parse_connection(path.read_bytes())
    except OSError as error:
        raise LifecycleError(f"cannot read {path}: {error}") from error
    return ServiceEndpoint(
        info.address,
        dial_timeout_s=_seconds(info.dial_timeout),
        root_cert=info.root_cert.encode() if info.tls_required else None,
        client_key=info.client_key.encode() if info.client_auth_required else None,
        client_cert=info.client_cert.encode() if info.client_auth_required else None,
    )


def _committed_definitions(ledger: ChannelLedger) -> list[ChaincodeDefinition]:
    entries = ledger.get_state_range(
        LIFECYCLE_NAMESPACE, _METADATA_PREFIX, _METADATA_PREFIX + "\x7f"
    )
    names = []
    for entry in entries:
        metadata = db_pb2.StateMetadata()
        try:
            metadata.ParseFromString(entry.value)
        except DecodeError:
            continue
        if metadata.datatype == DEFINITION_TYPE:
            names.append(entry.key.removeprefix(_METADATA_PREFIX))
    definitions = []
    for name in names:
        try:
            definition = read_definition(ledger, name)
        except ChaincodeDefinitionError:
            continue
        if definition is not None:
            definitions.append(definition)
    return definitions


def _seconds(text: str) -> float:
    """A Go duration ("10s", "500ms"); the default when empty, unparsable or negative."""
    try:
        seconds = parse_go_duration(text)
    except ValueError:
        return DEFAULT_DIAL_TIMEOUT_S
    return seconds if seconds > 0 else DEFAULT_DIAL_TIMEOUT_S
