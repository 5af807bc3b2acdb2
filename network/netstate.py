"""The recorded state of a local network: WORKDIR/state.json, and the launcher's error.

`NetworkState` holds, per node, a `NodeRecord` (its PID, its start time so that a
reused PID is not mistaken for the node, its command, log and READY addresses), plus
what `network up` decided once (each channel's orderer type) and did (the chaincodes
it deployed). `save` rewrites the file atomically after every change, so `down` can
clean up after an `up` that failed half-way. `network.launcher` starts and stops the
processes these records describe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from common.errors import MedledgerError

__all__ = ["STATE_FILE", "LaunchError", "NetworkState", "NodeKind", "NodeRecord"]

STATE_FILE = "state.json"
STATE_VERSION = 1


class LaunchError(MedledgerError):
    """A node could not be started or stopped; the message names it and says why."""


class NodeKind(StrEnum):
    """What a supervised process is; `STOP_ORDER` stops clients before servers."""

    GATEWAY = "gateway"
    PEER = "peer"
    CHAINCODE = "chaincode"
    ORDERER = "orderer"
    ETCD = "etcd"


@dataclass(frozen=True, kw_only=True)
class NodeRecord:
    """A started node as state.json records it."""

    name: str
    kind: NodeKind
    pid: int
    start_ticks: int | None
    argv: tuple[str, ...]
    log: str
    config: str | None
    addresses: Mapping[str, str]
    started_at: float

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["kind"] = str(self.kind)
        document["argv"] = list(self.argv)
        document["addresses"] = dict(self.addresses)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> NodeRecord:
        return cls(
            name=str(document["name"]),
            kind=NodeKind(document["kind"]),
            pid=int(document["pid"]),
            start_ticks=document.get("start_ticks"),
            argv=tuple(document["argv"]),
            log=str(document["log"]),
            config=document.get("config"),
            addresses=dict(document.get("addresses", {})),
            started_at=float(document.get("started_at", 0.0)),
        )


@dataclass
class NetworkState:
    """WORKDIR/state.json: the network's nodes and what `up` decided and did."""

    workdir: Path
    consortium: str = ""
    spec: str = ""
    tls: bool = True
    orderer_types: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    chaincodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.workdir / STATE_FILE

    @classmethod
    def load(cls, workdir: Path) -> NetworkState:
        """The saved state, or an empty one when the workdir has none.

        Raises:
            LaunchError: state.json exists but cannot be read.
        """
        path = workdir / STATE_FILE
        if not path.exists():
            return cls(workdir)
        try:
            document = json.loads(path.read_text())
            return cls(
                workdir=workdir,
                consortium=str(document.get("consortium", "")),
                spec=str(document.get("spec", "")),
                tls=bool(document.get("tls", True)),
                orderer_types=dict(document.get("orderer_types", {})),
                nodes={
                    name: NodeRecord.from_json(record)
                    for name, record in document.get("nodes", {}).items()
                },
                chaincodes=dict(document.get("chaincodes", {})),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LaunchError(
                f"{path}: unreadable network state ({error}); stop any nodes by hand "
                "and start over with --fresh"
            ) from None

    def save(self) -> None:
        """Write state.json atomically."""
        document = {
            "version": STATE_VERSION,
            "consortium": self.consortium,
            "spec": self.spec,
            "tls": self.tls,
            "orderer_types": self.orderer_types,
            "nodes": {name: record.to_json() for name, record in self.nodes.items()},
            "chaincodes": self.chaincodes,
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{STATE_FILE}.tmp")
        temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, self.path)
