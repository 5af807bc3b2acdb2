"""The pytest plugin for chaincode authors: a real network per test session, on free ports.

Installed as the `pytest11` entry point `medledger`, so any project with medledger
installed gets it. Mark a test with the chaincode under test and ask for
`medledger_network`:

    @pytest.mark.medledger(chaincode="path/to/my_chaincode", name="mycc")
    async def test_create(medledger_network: MedledgerNetwork) -> None:
        async with medledger_network.contract("Org1MSP") as contract:
            await contract.submit("CreateAsset", "a1", "blue")

The first test asking for a given network starts it: the consortium YAML (default: two
organisations Org1MSP and Org2MSP with one peer, one gateway and the users Admin and
User1 each, and one solo orderer of OrdererMSP, channel `mychannel`, TLS on) gets free
loopback ports and the chaincode under test as its only chaincode, and
`network.up.bring_up` starts it in a temporary folder and deploys the chaincode through
the lifecycle. Tests with the same marker arguments share that network; every network
is stopped at the end of the session. Marker arguments (all but `chaincode` optional):

    chaincode            the chaincode's source folder (relative: to the test file's folder)
    name                 its name on the channel (default: the folder's name)
    module               the module to serve (default: found from the folder's packages)
    spec                 a consortium YAML of your own (relative: to the test file's
                         folder); its ports are replaced with free ones and its
                         `chaincodes` section with the chaincode under test
    endorsement_policy   e.g. "OR('Org1MSP.peer', 'Org2MSP.peer')"
    collections          a Fabric collection-config JSON file, or a list of the spec's
                         collection entries (see network.spec_chaincodes)

gRPC connections belong to one event loop, and each async test usually runs in a loop
of its own, so clients are made per test: `gateway(mspid, user)` returns a connected
`Gateway` (use it with `async with`), `contract(mspid, user)` is an async context
manager yielding the chaincode's `Contract`. A submit returns once the submitting
organisation's peer committed; `synced()` and `wait_for_block(number, mspids)` wait for
the other peers before a test reads there. The unit-test side needs no network:
`chaincode.testing` (MockPeer, MockStub, MockContext, make_identity).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml

from common.grpc_runtime import apply_runtime_defaults
from network.ports import free_ports

# The test process runs nodes and clients in process: give it the gRPC settings every
# `medledger` process starts with (the plugin loads before any test imports gRPC), so
# tests exercise the runtime the nodes really use.
apply_runtime_defaults()

if TYPE_CHECKING:
    from gateway.client import Contract, Gateway
    from network.netstate import NetworkState
    from network.spec import ConsortiumSpec

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_SPEC",
    "MARKER",
    "MedledgerNetwork",
    "NetworkFactory",
    "NetworkRequest",
    "default_spec",
    "free_ports",
    "medledger_network",
    "medledger_networks",
    "prepare_spec",
]

MARKER = "medledger"
DEFAULT_CHANNEL = "mychannel"
DEFAULT_USER = "User1"
READY_TIMEOUT_S = 60.0
_PORT_KEYS = ("port", "admin_port", "client_port", "peer_port")
_T = TypeVar("_T")


def default_spec() -> dict[str, Any]:
    """The default consortium: two organisations, one solo orderer, TLS on."""

    def member(number: int) -> dict[str, Any]:
        return {
            "name": f"Org{number}",
            "mspid": f"Org{number}MSP",
            "domain": f"org{number}.example.com",
            "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 0}],
            "gateways": [{"name": "gateway0", "host": "127.0.0.1", "port": 0}],
            "users": [{"name": "Admin", "admin": True}, {"name": DEFAULT_USER}],
        }

    return {
        "consortium": "pytest-network",
        "tls": True,
        "organizations": [
            member(1),
            member(2),
            {
                "name": "Orderer",
                "mspid": "OrdererMSP",
                "domain": "orderer.example.com",
                "orderers": [
                    {
                        "name": "orderer0",
                        "host": "127.0.0.1",
                        "port": 0,
                        "admin_port": 0,
                    }
                ],
                "users": [{"name": "Admin", "admin": True}],
            },
        ],
        "channels": [
            {
                "name": DEFAULT_CHANNEL,
                "members": ["Org1MSP", "Org2MSP"],
                "orderer": {
                    "type": "solo",
                    "organizations": ["OrdererMSP"],
                    "batch_timeout": "50ms",
                },
            }
        ],
    }


DEFAULT_SPEC = default_spec()
"""The default consortium as a YAML document (ports 0 are replaced by free ones)."""


@dataclass(frozen=True)
class NetworkRequest:
    """What network a test wants: the marker's arguments, paths resolved."""

    chaincode: Path
    name: str
    spec: Path | None = None
    module: str | None = None
    endorsement_policy: str | None = None
    collections: tuple[tuple[tuple[str, Any], ...], ...] = ()

    @classmethod
    def from_marker(cls, marker: pytest.Mark, base: Path) -> NetworkRequest:
        """Read `@pytest.mark.medledger(...)`; relative paths are from `base`.

        Raises:
            pytest.UsageError: no chaincode, an unknown argument, or a missing file.
        """
        arguments = dict(marker.kwargs)
        if marker.args:
            arguments.setdefault("chaincode", marker.args[0])
        unknown = set(arguments) - {
            "chaincode",
            "name",
            "spec",
            "module",
            "endorsement_policy",
            "collections",
        }
        if unknown:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER}: unknown argument(s) {sorted(unknown)}"
            )
        if "chaincode" not in arguments:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} needs chaincode=<the chaincode's folder>"
            )
        chaincode = _resolve(base, arguments["chaincode"], "chaincode", folder=True)
        spec = arguments.get("spec")
        return cls(
            chaincode=chaincode,
            name=str(arguments.get("name") or chaincode.name),
            spec=_resolve(base, spec, "spec", folder=False) if spec else None,
            module=arguments.get("module"),
            endorsement_policy=arguments.get("endorsement_policy"),
            collections=_collections(arguments.get("collections"), base),
        )


@dataclass
class MedledgerNetwork:
    """A running network with the chaincode under test deployed."""

    spec_path: Path
    workdir: Path
    spec: ConsortiumSpec
    state: NetworkState
    channel: str
    chaincode: str
    progress: list[str] = field(default_factory=list)

    @property
    def organizations(self) -> list[str]:
        """The MSP ids of the organisations with a gateway (those clients can use)."""
        return [org.mspid for org in self.spec.organizations if org.gateways]

    def users(self, mspid: str) -> list[str]:
        """The user names of an organisation."""
        return [user.name for user in self.spec.organization(mspid).users]

    def msp_dir(self, mspid: str, user: str = DEFAULT_USER) -> Path:
        """A user's local MSP folder (signcerts, keystore)."""
        from network.cryptogen import crypto_layout

        layout = crypto_layout(self.spec, self.workdir / "crypto")
        return layout.organization(mspid).user(user).msp_dir

    def gateway(self, mspid: str, user: str = DEFAULT_USER) -> Gateway:
        """A connection to the organisation's first gateway as `user`; close it."""
        from gateway.client import Gateway, identity_from_msp, signer_from_msp
        from network.cryptogen import crypto_layout

        organization = self.spec.organization(mspid)
        if not organization.gateways:
            raise KeyError(f"{mspid} has no gateway")
        layout = crypto_layout(self.spec, self.workdir / "crypto").organization(mspid)
        msp = layout.user(user).msp_dir
        return Gateway.connect(
            organization.gateways[0].address,
            identity_from_msp(msp, mspid),
            signer_from_msp(msp, mspid),
            tls=layout.tlsca_cert if self.state.tls else None,
        )

    @contextlib.asynccontextmanager
    async def contract(
        self, mspid: str, user: str = DEFAULT_USER
    ) -> AsyncIterator[Contract]:
        """The chaincode under test, through `mspid`'s gateway as `user`."""
        async with self.gateway(mspid, user) as gateway:
            yield gateway.network(self.channel).contract(self.chaincode)

    async def synced(self, *, timeout_s: float = READY_TIMEOUT_S) -> int:
        """Wait until the peer of every organisation with a gateway has committed every
        block one of them has; returns that height.

        A submit returns once the submitting organisation's peer committed it; call
        this before reading or endorsing on another organisation's peer what the
        submit wrote.
        """
        chosen = self.organizations
        async with asyncio.timeout(timeout_s):
            heights = await asyncio.gather(*(self._height(m) for m in chosen))
        await self.wait_for_block(max(heights) - 1, chosen, timeout_s=timeout_s)
        return max(heights)

    async def _height(self, mspid: str) -> int:
        from protos.common.ledger_pb2 import BlockchainInfo

        async with self.gateway(mspid, self._reader(mspid)) as gateway:
            qscc = gateway.network(self.channel).contract("qscc")
            info = BlockchainInfo.FromString(
                await qscc.evaluate("GetChainInfo", self.channel)
            )
        return info.height

    def _reader(self, mspid: str) -> str:
        users = self.users(mspid)
        return DEFAULT_USER if DEFAULT_USER in users else users[0]

    async def wait_for_block(
        self,
        number: int,
        mspids: Iterable[str] | None = None,
        *,
        timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        """Return once the peers of `mspids` (default: every organisation with a
        gateway) have committed block `number`.

        A submit returns when the submitting organisation's peer committed the
        transaction; another organisation's peer may still be a block behind. Wait
        here before endorsing on that peer what depends on the transaction:

            status = await (await contract.submit_async("Share", "r1")).status()
            await network.wait_for_block(status.block_number, ["Org2MSP"])

        Raises:
            TimeoutError: a peer did not commit the block within `timeout_s`.
        """

        async def committed(mspid: str) -> None:
            async with self.gateway(mspid, self._reader(mspid)) as gateway:
                events = gateway.network(self.channel).filtered_block_events(
                    start_block=number
                )
                async for _ in events:
                    return

        chosen = list(self.organizations if mspids is None else mspids)
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(committed(mspid) for mspid in chosen))


class NetworkFactory:
    """Starts networks on demand, one per distinct request, and stops them all."""

    def __init__(self, folder: Callable[[str], Path]) -> None:
        self._folder = folder
        self._networks: dict[NetworkRequest, MedledgerNetwork] = {}

    def get(self, request: NetworkRequest) -> MedledgerNetwork:
        """The network for `request`, started on first use.

        Raises:
            ConfigError: the consortium YAML or the chaincode entry is wrong.
            LaunchError: a node or a deployment step failed.
        """
        if request not in self._networks:
            self._networks[request] = self._start(request)
        return self._networks[request]

    def close(self) -> None:
        """Stop every network started (their folders stay for inspection)."""
        from network.up import bring_down

        networks, self._networks = list(self._networks.values()), {}
        for network in networks:
            _run(bring_down(network.workdir, network.progress.append))

    def _start(self, request: NetworkRequest) -> MedledgerNetwork:
        from network.spec import load_spec
        from network.up import UpOptions, bring_up

        folder = self._folder(request.name)
        source = (
            yaml.safe_load(request.spec.read_text()) if request.spec else default_spec()
        )
        document = prepare_spec(source, request)
        spec_path = folder / "consortium.yaml"
        spec_path.write_text(yaml.safe_dump(document, sort_keys=False))
        spec = load_spec(spec_path)
        channels = [channel.name for channel in spec.channels]
        workdir = folder / "network"
        progress: list[str] = []
        options = UpOptions(
            spec_path=spec_path,
            workdir=workdir,
            solo=True,
            ready_timeout_s=READY_TIMEOUT_S,
        )
        try:
            state = _run(bring_up(options, progress.append))
        except BaseException:
            _run(_down_quietly(workdir))
            raise
        return MedledgerNetwork(
            spec_path=spec_path,
            workdir=workdir,
            spec=spec,
            state=state,
            channel=channels[0],
            chaincode=request.name,
            progress=progress,
        )


def prepare_spec(
    document: Mapping[str, Any], request: NetworkRequest
) -> dict[str, Any]:
    """A copy of a consortium document on free ports, deploying only the chaincode.

    Every `port`, `admin_port`, `client_port` and `peer_port` gets a free loopback port
    (orderers always get an explicit `admin_port`). The chaincode's path is absolute;
    nothing else in a consortium file is a path.
    """
    copy: dict[str, Any] = json.loads(json.dumps(document))
    slots: list[tuple[dict[str, Any], str]] = []
    for organization in copy.get("organizations") or []:
        for kind in ("peers", "orderers", "gateways"):
            for node in organization.get(kind) or []:
                slots.append((node, "port"))
                if kind == "orderers":
                    slots.append((node, "admin_port"))
    etcd = (copy.get("orderers") or {}).get("etcd") or {}
    for member in etcd.get("members") or []:
        slots += [(member, "client_port"), (member, "peer_port")]
    for (node, key), port in zip(slots, free_ports(len(slots)), strict=True):
        node[key] = port
    entry: dict[str, Any] = {
        "name": request.name,
        "path": str(request.chaincode),
        "language": "python",
    }
    if request.module:
        entry["module"] = request.module
    if request.endorsement_policy:
        entry["endorsement_policy"] = request.endorsement_policy
    if request.collections:
        entry["collections"] = [dict(items) for items in request.collections]
    copy["chaincodes"] = [entry]
    return copy


# ---------------------------------------------------------------- pytest hooks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(chaincode, name=None, spec=None, module=None, "
        "endorsement_policy=None, collections=None): the chaincode under test and "
        "the network the medledger_network fixture starts for it",
    )


@pytest.fixture(scope="session")
def medledger_networks(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NetworkFactory]:
    """Starts networks on demand (`get(NetworkRequest(...))`); stops them at the end."""
    factory = NetworkFactory(lambda name: tmp_path_factory.mktemp(f"medledger-{name}"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def medledger_network(
    request: pytest.FixtureRequest, medledger_networks: NetworkFactory
) -> MedledgerNetwork:
    """The network of the test's `@pytest.mark.medledger(...)`, running (see module)."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        raise pytest.UsageError(
            f"the medledger_network fixture needs @pytest.mark.{MARKER}(chaincode=...)"
        )
    base = Path(str(request.node.path)).parent
    return medledger_networks.get(NetworkRequest.from_marker(marker, base))


# ---------------------------------------------------------------- helpers


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion in a thread of its own (a loop may be running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _down_quietly(workdir: Path) -> None:
    from network.up import bring_down

    with contextlib.suppress(Exception):
        await bring_down(workdir, lambda line: None)


def _resolve(base: Path, value: object, what: str, *, folder: bool) -> Path:
    path = Path(str(value))
    resolved = (path if path.is_absolute() else base / path).resolve()
    if not (resolved.is_dir() if folder else resolved.is_file()):
        kind = "folder" if folder else "file"
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: {what}={value!r}: no {kind} {resolved}"
        )
    return resolved


def _collections(value: object, base: Path) -> tuple[tuple[tuple[str, Any], ...], ...]:
    """Collections as hashable spec entries, from a Fabric JSON file or spec entries."""
    if not value:
        return ()
    if isinstance(value, str | Path):
        path = _resolve(base, value, "collections", folder=False)
        entries = [_from_fabric(item) for item in json.loads(path.read_text())]
    elif isinstance(value, list | tuple):
        entries = [dict(item) for item in value]
    else:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: collections must be a JSON file or a list"
        )
    return tuple(tuple(sorted(entry.items())) for entry in entries)


_FABRIC_KEYS = {
    "name": "name",
    "policy": "policy",
    "requiredPeerCount": "required_peer_count",
    "maxPeerCount": "max_peer_count",
    "blockToLive": "block_to_live",
    "memberOnlyRead": "member_only_read",
    "memberOnlyWrite": "member_only_write",
}


def _from_fabric(item: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of Fabric's collection-config JSON as a spec collection entry."""
    entry = {
        _FABRIC_KEYS[key]: value for key, value in item.items() if key in _FABRIC_KEYS
    }
    policy = (item.get("endorsementPolicy") or {}).get("signaturePolicy")
    if policy:
        entry["endorsement_policy"] = policy
    return entry
