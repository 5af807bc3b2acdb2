"""Chaincode for a local network: package ids, how peers run it, its committed definition.

`package_id` names a chaincode's source as Fabric does (``<label>:<hex SHA-256>``, here
over the folder's files in a fixed order, so the same source always has the same id);
`launch_command` is how a peer starts Python or Node chaincode, `ccaas_command` how the
launcher runs a chaincode server. `chaincode_definition` is the `_lifecycle`
definition of a spec's chaincode.

`commit_definition` puts a definition on a channel through an ordinary transaction:
its `_lifecycle` writes endorsed by a peer of every member organisation (so any
LifecycleEndorsement policy built from the members' Endorsement policies is met),
broadcast to an orderer, then awaited on every member peer through DeliverFiltered
until it is committed, failing unless it is VALID.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from common.msp import SigningIdentity
from common.protoutil import BLOCK_UNTIL_READY, SeekPosition, create_seek_envelope
from common.protoutil.deliver import CONTENT_BLOCK
from common.tls import TlsFiles, channel_credentials
from network.bench_peer import endorser_transaction
from network.launcher import LaunchError
from network.spec_chaincodes import (
    ChaincodeLanguage,
    ChaincodeSpec,
    collection_package,
    endorsement_policy_bytes,
)
from peer.lifecycle import (
    LIFECYCLE_CHAINCODE_VERSION,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    definition_writes,
)
from peer.simulator import RwSetBuilder
from protos.common import common_pb2
from protos.orderer import ab_pb2
from protos.peer import events_pb2, transaction_pb2

__all__ = [
    "Endpoint",
    "ccaas_command",
    "chaincode_definition",
    "commit_definition",
    "launch_command",
    "module_root",
    "package_id",
]

COMMIT_TIMEOUT_S = 60.0
BROADCAST_TIMEOUT_S = 30.0
_SKIPPED = frozenset({"__pycache__", ".git", "node_modules", ".venv", ".mypy_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A node to dial: its address and, with TLS, the CA of its certificate."""

    name: str
    address: str
    tls_ca: Path | None


def package_id(chaincode: ChaincodeSpec) -> str:
    """``<name>_<version>:<SHA-256 over the language, module and source files>``."""
    digest = hashlib.sha256()
    digest.update(f"{chaincode.language}\0{chaincode.module or ''}\0".encode())
    for relative, path in _source_files(chaincode.path):
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return f"{chaincode.label}:{digest.hexdigest()}"


def module_root(chaincode: ChaincodeSpec) -> Path:
    """The folder to put on PYTHONPATH so that `chaincode.module` imports.

    When the folder's path ends with the module's parts (``.../chaincode/contracts/asset``
    for ``chaincode.contracts.asset``) the root is above them; otherwise the module
    lives inside the folder.
    """
    assert chaincode.module is not None, "python and ccaas chaincode have a module"
    parts = chaincode.module.split(":")[0].split(".")
    if chaincode.path.parts[-len(parts) :] == tuple(parts):
        return chaincode.path.parents[len(parts) - 1]
    return chaincode.path


def launch_command(
    chaincode: ChaincodeSpec, *, python: str = sys.executable, source: str | None = None
) -> tuple[str, ...]:
    """The command a peer runs for Python or Node chaincode (it adds Fabric's env).

    `source` is where the peer finds a copy of the chaincode (for Python, the folder
    to put on PYTHONPATH), relative to the folder the peer is started in, as
    `network generate` lays it out; None means the spec's folder on this host.
    """
    if chaincode.language is ChaincodeLanguage.NODE:
        return (
            *_node_runner(chaincode, source),
            "start",
            "--module-path",
            source or str(chaincode.path),
        )
    assert chaincode.module is not None, "python chaincode has a module"
    python_path = (
        source if source is not None else _python_path(str(module_root(chaincode)))
    )
    return (
        "env",
        f"PYTHONPATH={python_path}",
        python,
        "-m",
        "chaincode",
        "serve",
        "--module",
        chaincode.module,
    )


def _node_runner(chaincode: ChaincodeSpec, source: str | None) -> tuple[str, ...]:
    """The project's own fabric-chaincode-node when installed here, else npx."""
    if source is not None:
        return ("npx", "fabric-chaincode-node")
    local = chaincode.path / "node_modules" / ".bin" / "fabric-chaincode-node"
    if local.exists():
        return (str(local),)
    return (shutil.which("npx") or "npx", "fabric-chaincode-node")


def ccaas_command(
    chaincode: ChaincodeSpec,
    *,
    package: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    python: str = sys.executable,
) -> tuple[str, ...]:
    """`python -m chaincode serve --listen ADDRESS` for a chaincode run as a service."""
    assert chaincode.module is not None, "ccaas chaincode has a module"
    assert chaincode.address is not None, "ccaas chaincode has a port"
    command = [
        "env",
        f"PYTHONPATH={_python_path(str(module_root(chaincode)))}",
        python,
        "-m",
        "chaincode",
        "serve",
        "--module",
        chaincode.module,
        "--listen",
        chaincode.address,
        "--chaincode-id",
        package,
    ]
    if tls_cert is not None and tls_key is not None:
        command += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
    return tuple(command)


def chaincode_definition(chaincode: ChaincodeSpec) -> ChaincodeDefinition:
    """The `_lifecycle` definition of a spec's chaincode."""
    return ChaincodeDefinition(
        name=chaincode.name,
        version=chaincode.version,
        sequence=chaincode.sequence,
        endorsement_policy=endorsement_policy_bytes(chaincode.endorsement_policy),
        init_required=chaincode.init_required,
        collections=collection_package(chaincode.collections),
    )


async def commit_definition(
    definition: ChaincodeDefinition,
    *,
    channel: str,
    creator: SigningIdentity,
    endorsers: Sequence[SigningIdentity],
    orderer: Endpoint,
    peers: Sequence[tuple[Endpoint, int]],
    reader: SigningIdentity,
    timeout_s: float = COMMIT_TIMEOUT_S,
) -> str:
    """Commit `definition` on `channel`; returns the transaction id.

    `peers` pairs each peer that must have committed it with the channel height it
    had before (where its Deliver stream starts); `reader` signs those requests.

    Raises:
        LaunchError: the orderer refused the transaction, a peer did not commit it in
            time, or it was committed invalid.
    """
    nonce = os.urandom(24)
    tx_id = hashlib.sha256(nonce + creator.serialized).hexdigest()
    builder = RwSetBuilder()
    for key, value in definition_writes(definition):
        builder.add_write(LIFECYCLE_NAMESPACE, key, value)
    rwset, _ = builder.build()
    envelope = endorser_transaction(
        channel_id=channel,
        chaincode=LIFECYCLE_NAMESPACE,
        version=LIFECYCLE_CHAINCODE_VERSION,
        rwset=rwset,
        creator=creator,
        endorsers=endorsers,
        args=(b"CommitChaincodeDefinition",),
        nonce=nonce,
    )
    await _broadcast(orderer, envelope)
    await asyncio.gather(
        *(
            _wait_committed(
                peer,
                channel=channel,
                tx_id=tx_id,
                start=height,
                reader=reader,
                timeout_s=timeout_s,
            )
            for peer, height in peers
        )
    )
    return tx_id


def _open(endpoint: Endpoint) -> grpc.aio.Channel:
    if endpoint.tls_ca is None:
        return grpc.aio.insecure_channel(endpoint.address)
    credentials = channel_credentials(TlsFiles(root_cas=(endpoint.tls_ca,)))
    return grpc.aio.secure_channel(endpoint.address, credentials)


async def _broadcast(orderer: Endpoint, envelope: bytes) -> None:
    async with _open(orderer) as channel:
        method = channel.stream_stream(  # type: ignore[call-arg]
            "/orderer.AtomicBroadcast/Broadcast",
            response_deserializer=ab_pb2.BroadcastResponse.FromString,
        )
        try:
            call: Any = method(iter([envelope]), timeout=BROADCAST_TIMEOUT_S)
            responses = [response async for response in call]
        except grpc.aio.AioRpcError as error:
            raise LaunchError(
                f"{orderer.name} ({orderer.address}): broadcast failed: "
                f"{error.code().name}: {error.details()}"
            ) from None
    if len(responses) != 1 or responses[0].status != common_pb2.SUCCESS:
        shown = ", ".join(
            f"{common_pb2.Status.Name(r.status)} {r.info}".strip() for r in responses
        )
        raise LaunchError(
            f"{orderer.name} refused the transaction: {shown or 'no answer'}"
        )


async def _wait_committed(
    peer: Endpoint,
    *,
    channel: str,
    tx_id: str,
    start: int,
    reader: SigningIdentity,
    timeout_s: float,
) -> None:
    request = create_seek_envelope(
        channel_id=channel,
        start=SeekPosition.specified(start),
        stop=SeekPosition.specified(2**63 - 1),
        behavior=BLOCK_UNTIL_READY,
        creator=reader.serialized,
        signer=reader.sign,
        content_type=CONTENT_BLOCK,
    ).SerializeToString()
    async with _open(peer) as grpc_channel:
        method = grpc_channel.stream_stream(  # type: ignore[call-arg]
            "/protos.Deliver/DeliverFiltered",
            response_deserializer=events_pb2.DeliverResponse.FromString,
        )
        try:
            call: Any = method(iter([request]), timeout=timeout_s)
            async for response in call:
                code = _validation_code(response, tx_id)
                if code is None:
                    continue
                call.cancel()
                if code != transaction_pb2.VALID:
                    raise LaunchError(
                        f"{peer.name}: transaction {tx_id} was committed invalid: "
                        f"{transaction_pb2.TxValidationCode.Name(code)}"
                    )
                return
        except grpc.aio.AioRpcError as error:
            raise LaunchError(
                f"{peer.name} ({peer.address}): waiting for transaction {tx_id}: "
                f"{error.code().name}: {error.details()}"
            ) from None
    raise LaunchError(f"{peer.name}: the block stream ended before transaction {tx_id}")


def _validation_code(response: events_pb2.DeliverResponse, tx_id: str) -> int | None:
    kind = response.WhichOneof("Type")
    if kind == "status":
        raise LaunchError(
            f"the peer ended the block stream: {common_pb2.Status.Name(response.status)}"
        )
    if kind != "filtered_block":
        return None
    for transaction in response.filtered_block.filtered_transactions:
        if transaction.txid == tx_id:
            return int(transaction.tx_validation_code)
    return None


def _source_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """Regular files under `folder`, sorted, skipping caches and dependencies."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in _SKIPPED for part in relative.parts):
            continue
        if path.is_file() and not path.name.endswith(_SKIPPED_SUFFIXES):
            yield relative.as_posix(), path


def _python_path(root: str) -> str:
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root
