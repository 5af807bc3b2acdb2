"""Deploying a chaincode-as-a-service through `_lifecycle` on in-process peers.

`ccaas_package` builds the install package naming the chaincode server's address;
`first_definition` is sequence 1 of a chaincode either Hospital A's or B's peer endorses;
`deploy_ccaas` has each organisation's admin install its package on its own peer and
approve the definition, then, once every peer holds every approval, commits it as
Hospital A's admin endorsed by all those peers; `synced` waits until the peers hold
as many blocks as the tallest one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from network.lifecycle_client import Definition, Target, approve, commit, install
from network.spec_chaincodes import endorsement_policy_bytes
from peer.lifecycle.package import build_package
from peer.node import PeerNode
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    wait_for_height,
)


@dataclass(frozen=True)
class OrgInstall:
    """One organisation's part of a deployment: its peer and what it installs."""

    mspid: str
    peer: str
    """The gRPC address of the organisation's peer."""
    package: tuple[bytes, str]
    """The install package and its package id."""


def ccaas_package(address: str, folder: Path, label: str) -> tuple[bytes, str]:
    """A chaincode-as-a-service install package naming `address`; with its id."""
    folder.mkdir(parents=True)
    connection = {"address": address, "dial_timeout": "10s", "tls_required": False}
    (folder / "connection.json").write_text(json.dumps(connection))
    data, _ = build_package(label=label, kind="ccaas", source=folder)
    return data, f"{label}:{hashlib.sha256(data).hexdigest()}"


def first_definition(name: str, *, collections: bytes = b"") -> Definition:
    """Version 1.0, sequence 1 of `name`; any one of A's or B's peers endorses."""
    return Definition(
        name=name,
        version="1.0",
        sequence=1,
        endorsement_policy=endorsement_policy_bytes(
            f"OR('{HOSPITAL_A}.peer', '{HOSPITAL_B}.peer')"
        ),
        collections=collections,
    )


async def deploy_ccaas(
    material: PeerMaterial,
    orderer: str,
    orgs: Sequence[OrgInstall],
    definition: Definition,
    nodes: Collection[PeerNode],
) -> None:
    """Install and approve for each of `orgs`, commit, and wait until `nodes` have it.

    The commit's endorsers must all have committed every approval first, or their
    read sets (and so their endorsements) differ.
    """
    ordering = Target(address=orderer)
    for org in orgs:
        admin = material.user(org.mspid, "Admin")
        data, package_id = org.package
        installed = await install(Target(address=org.peer), admin, data)
        assert installed.package_id == package_id
        await approve(
            Target(address=org.peer),
            ordering,
            admin,
            channel=CHANNEL,
            definition=definition,
            package_id=package_id,
        )
    await synced(nodes)
    await commit(
        [Target(address=org.peer) for org in orgs],
        ordering,
        material.user(HOSPITAL_A, "Admin"),
        channel=CHANNEL,
        definition=definition,
    )
    await synced(nodes)


async def synced(nodes: Collection[PeerNode]) -> None:
    """Wait until every peer holds as many blocks as the tallest one."""
    height = max(node.channels.require(CHANNEL).height() for node in nodes)
    for node in nodes:
        await wait_for_height(node, height)
