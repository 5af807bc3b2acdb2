"""Chaincode for a network: its install package and its deployment through the lifecycle.

`chaincode_package` builds a spec's chaincode into a Fabric install package
(`peer.lifecycle.package`): the source folder for Python and Node chaincode, a
`connection.json` for ccaas (the address the peers dial, and the CA of the server's
TLS certificate). `ccaas_command` is how the launcher runs a ccaas chaincode server,
`launch_command` how a peer.yaml entry would run Python or Node chaincode directly.

`deploy` is Fabric's lifecycle, each step skipped when it is already done so that a
resumed network repeats nothing: install the package on every member peer, each
member organisation approves the definition for itself (endorsed by its own peer),
then one commit endorsed by a peer of every member organisation; finally every member
peer has caught up with the block holding it. A definition with `init_required` then
gets its init transaction (a proposal flagged `is_init` calling the spec's
`init_function`, signed by the first organisation's admin and endorsed by a peer of
every member organisation, so any endorsement policy over the members is met); an
"already initialized" refusal means an earlier run sent it, and is not an error.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.msp import SigningIdentity
from common.protoutil import create_proposal, sign_proposal
from network.launcher import LaunchError
from network.lifecycle_client import (
    Definition,
    LifecycleCommandError,
    Target,
    approve,
    commit,
    install,
    query_approved,
    query_committed,
    query_installed,
    submit_proposal,
)
from network.spec_chaincodes import (
    ChaincodeLanguage,
    ChaincodeSpec,
    collection_package,
    endorsement_policy_bytes,
    python_module,
)
from peer.lifecycle.package import build_package
from peer.lifecycle.package import package_id as make_package_id
from protos.peer.lifecycle import lifecycle_pb2 as lb

__all__ = [
    "ChaincodePackageFile",
    "OrganizationPeers",
    "ccaas_command",
    "chaincode_package",
    "deploy",
    "launch_command",
    "lifecycle_definition",
    "module_root",
]


@dataclass(frozen=True, slots=True)
class ChaincodePackageFile:
    """An install package and its id (``<label>:<hex SHA-256 of the file>``)."""

    package_id: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class OrganizationPeers:
    """A member organisation: its admin and its peers (the first one approves)."""

    mspid: str
    admin: SigningIdentity
    peers: tuple[Target, ...]


def chaincode_package(
    chaincode: ChaincodeSpec, *, ccaas_root_cert: bytes | None = None
) -> ChaincodePackageFile:
    """The install package of a spec's chaincode (deterministic: same source, same id).

    `ccaas_root_cert` is the CA of a ccaas server's TLS certificate (None: plaintext).
    """
    if chaincode.language is ChaincodeLanguage.CCAAS:
        return _ccaas_package(chaincode, ccaas_root_cert)
    data, _ = build_package(
        label=chaincode.label,
        kind=str(chaincode.language),
        source=chaincode.path,
        module=chaincode.module or "",
    )
    return ChaincodePackageFile(make_package_id(chaincode.label, data), data)


def lifecycle_definition(chaincode: ChaincodeSpec) -> Definition:
    """The definition the lifecycle commands approve and commit."""
    return Definition(
        name=chaincode.name,
        version=chaincode.version,
        sequence=chaincode.sequence,
        endorsement_policy=endorsement_policy_bytes(chaincode.endorsement_policy),
        init_required=chaincode.init_required,
        collections=collection_package(chaincode.collections),
    )


async def deploy(
    chaincode: ChaincodeSpec,
    package: ChaincodePackageFile,
    *,
    channel: str,
    organizations: Sequence[OrganizationPeers],
    orderer: Target,
    progress: Callable[[str], None],
    caught_up: Callable[[], Awaitable[None]],
) -> str | None:
    """Install, approve and commit `chaincode` on `channel`; the commit's tx id.

    None when the definition (this sequence or a later one) is already committed.
    `caught_up` returns once every member peer has the channel's newest block: the
    commit's endorsers must all have seen every approval, or their read sets (and so
    their endorsements) would differ.

    Raises:
        LaunchError: a peer or the orderer refused a step; the message says which.
    """
    if not organizations:
        raise LaunchError(f"channel {channel} has no peers to run {chaincode.name}")
    try:
        await _install_everywhere(chaincode, package, organizations, progress)
        tx_id = await _define(
            chaincode, package, channel, organizations, orderer, progress, caught_up
        )
        if chaincode.init_required:
            await caught_up()
            await _initialize(chaincode, channel, organizations, orderer, progress)
    except LifecycleCommandError as error:
        raise LaunchError(f"deploying chaincode {chaincode.name}: {error}") from None
    return tx_id


async def _define(
    chaincode: ChaincodeSpec,
    package: ChaincodePackageFile,
    channel: str,
    organizations: Sequence[OrganizationPeers],
    orderer: Target,
    progress: Callable[[str], None],
    caught_up: Callable[[], Awaitable[None]],
) -> str | None:
    """Approve per organisation and commit, unless committed already (then None)."""
    first = organizations[0]
    if await _committed_sequence(first, channel, chaincode.name) >= chaincode.sequence:
        return None
    definition = lifecycle_definition(chaincode)
    for organization in organizations:
        await _approve(organization, orderer, channel, definition, package, progress)
    await caught_up()
    return await commit(
        [organization.peers[0] for organization in organizations],
        orderer,
        first.admin,
        channel=channel,
        definition=definition,
    )


ALREADY_INITIALIZED = "already initialized"
"""What a peer's refusal of a second init transaction says."""


async def _initialize(
    chaincode: ChaincodeSpec,
    channel: str,
    organizations: Sequence[OrganizationPeers],
    orderer: Target,
    progress: Callable[[str], None],
) -> str | None:
    """Send the init transaction of an `init_required` chaincode; its tx id.

    None when the chaincode was initialized before (for this definition's version).
    """
    admin = organizations[0].admin
    created = create_proposal(
        channel_id=channel,
        chaincode_name=chaincode.name,
        args=[chaincode.init_function.encode(), *map(str.encode, chaincode.init_args)],
        creator=admin.serialized,
        is_init=True,
    )
    signed = sign_proposal(created.proposal_bytes, admin.sign)
    peers = [organization.peers[0] for organization in organizations]
    try:
        tx_id = await submit_proposal(peers, orderer, admin, signed)
    except LifecycleCommandError as error:
        if ALREADY_INITIALIZED in str(error):
            return None
        raise
    progress(
        f"initialized {chaincode.name} on {channel} ({chaincode.init_function}): "
        f"tx {tx_id[:16]}…"
    )
    return tx_id


def ccaas_command(
    chaincode: ChaincodeSpec,
    *,
    package: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    python: str = sys.executable,
) -> tuple[str, ...]:
    """`python -m chaincode serve --listen ADDRESS` for a chaincode run as a service."""
    assert chaincode.address is not None, "ccaas chaincode has a port"
    command = [
        "env",
        f"PYTHONPATH={_python_path(str(module_root(chaincode)))}",
        python,
        "-m",
        "chaincode",
        "serve",
        "--module",
        served_module(chaincode),
        "--listen",
        chaincode.address,
        "--chaincode-id",
        package,
    ]
    if tls_cert is not None and tls_key is not None:
        command += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
    return tuple(command)


def launch_command(
    chaincode: ChaincodeSpec, *, python: str = sys.executable, source: str | None = None
) -> tuple[str, ...]:
    """A peer.yaml `launch` command for Python or Node chaincode (the peer adds env).

    `source` is where the peer finds a copy of the chaincode (for Python, the folder
    to put on PYTHONPATH), relative to the folder the peer is started in; None means
    the spec's folder on this host.
    """
    if chaincode.language is ChaincodeLanguage.NODE:
        folder = source or str(chaincode.path)
        return (*_node_runner(chaincode, source), "start", "--module-path", folder)
    root = source if source is not None else _python_path(str(module_root(chaincode)))
    return (
        "env",
        f"PYTHONPATH={root}",
        python,
        "-m",
        "chaincode",
        "serve",
        "--module",
        served_module(chaincode),
    )


def served_module(chaincode: ChaincodeSpec) -> str:
    """The module `chaincode serve` loads: the spec's, else found from the folder."""
    return chaincode.module or python_module(chaincode.path)


def module_root(chaincode: ChaincodeSpec) -> Path:
    """The folder to put on PYTHONPATH so that the served module imports.

    When the folder's path ends with the module's parts (``.../chaincode/contracts/asset``
    for ``chaincode.contracts.asset``) the root is above them; otherwise the module
    lives inside the folder.
    """
    parts = served_module(chaincode).split(":")[0].split(".")
    if chaincode.path.parts[-len(parts) :] == tuple(parts):
        return chaincode.path.parents[len(parts) - 1]
    return chaincode.path


async def _install_everywhere(
    chaincode: ChaincodeSpec,
    package: ChaincodePackageFile,
    organizations: Sequence[OrganizationPeers],
    progress: Callable[[str], None],
) -> None:
    for organization in organizations:
        for peer in organization.peers:
            installed = await query_installed(peer, organization.admin)
            assert isinstance(installed, lb.QueryInstalledChaincodesResult)
            if any(
                entry.package_id == package.package_id
                for entry in installed.installed_chaincodes
            ):
                continue
            await install(peer, organization.admin, package.data)
            progress(f"installed {package.package_id[:40]}… on {peer.address}")


async def _committed_sequence(
    organization: OrganizationPeers, channel: str, name: str
) -> int:
    try:
        result = await query_committed(
            organization.peers[0], organization.admin, channel=channel, name=name
        )
    except LifecycleCommandError:
        return 0
    assert isinstance(result, lb.QueryChaincodeDefinitionResult)
    return int(result.sequence)


async def _approve(
    organization: OrganizationPeers,
    orderer: Target,
    channel: str,
    definition: Definition,
    package: ChaincodePackageFile,
    progress: Callable[[str], None],
) -> None:
    peer = organization.peers[0]
    try:
        approved = await query_approved(
            peer, organization.admin, channel=channel, name=definition.name
        )
        if approved.sequence == definition.sequence:
            return
    except LifecycleCommandError:
        pass
    tx_id = await approve(
        peer,
        orderer,
        organization.admin,
        channel=channel,
        definition=definition,
        package_id=package.package_id,
    )
    progress(
        f"{organization.mspid} approved {definition.name} (sequence "
        f"{definition.sequence}) on {channel}: tx {tx_id[:16]}…"
    )


def _ccaas_package(
    chaincode: ChaincodeSpec, root_cert: bytes | None
) -> ChaincodePackageFile:
    assert chaincode.address is not None, "ccaas chaincode has a port"
    connection: dict[str, object] = {
        "address": chaincode.address,
        "dial_timeout": "10s",
        "tls_required": root_cert is not None,
    }
    if root_cert is not None:
        connection["root_cert"] = root_cert.decode()
    with tempfile.TemporaryDirectory(prefix="medledger-ccaas-") as folder:
        Path(folder, "connection.json").write_text(
            json.dumps(connection, indent=2, sort_keys=True) + "\n"
        )
        data, _ = build_package(
            label=chaincode.label, kind="ccaas", source=Path(folder)
        )
    return ChaincodePackageFile(make_package_id(chaincode.label, data), data)


def _node_runner(chaincode: ChaincodeSpec, source: str | None) -> tuple[str, ...]:
    """The project's own fabric-chaincode-node when installed here, else npx."""
    if source is not None:
        return ("npx", "fabric-chaincode-node")
    local = chaincode.path / "node_modules" / ".bin" / "fabric-chaincode-node"
    if local.exists():
        return (str(local),)
    return (shutil.which("npx") or "npx", "fabric-chaincode-node")


def _python_path(root: str) -> str:
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root
