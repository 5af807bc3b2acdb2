"""Which chaincode serves a proposal: committed `_lifecycle` definitions and local packages.

Execute phase, before simulation. Fabric's endorser asks its lifecycle for the
chaincode's endorsement info: the committed definition's version and init rule, and
the package id this peer runs for it. As in Fabric, the definition's `Sequence` is read
through the transaction's simulator, so that read lands in the read-write set and a
definition committed meanwhile invalidates the transaction (MVCC); the rest of the
definition comes from a cache keyed by that sequence, filled from committed state.

The package id comes from `peer.yaml` (`chaincodes.packages`) when it names the
chaincode, else from the package this peer's organisation approved for the committed
definition and installed through `_lifecycle` (`peer.lifecycle.runtime`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from peer.chaincode.execute import ChaincodeInfo
from peer.errors import ChaincodeDefinitionError, ChaincodeError
from peer.lifecycle import (
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    DefinitionReader,
    field_key,
    read_definition,
)
from peer.simulator import TxSimulator
from protos.peer.lifecycle import db_pb2

__all__ = ["CommittedLifecycle", "EndorsementInfo", "InstalledPackages"]


InstalledPackages = Callable[[str, ChaincodeDefinition], str | None]
"""(channel id, committed definition) → the installed package serving it, or None."""


@dataclass(frozen=True, slots=True)
class EndorsementInfo:
    """What the endorser needs about a defined chaincode."""

    definition: ChaincodeDefinition
    package_id: str


class CommittedLifecycle:
    """`peer.chaincode.execute.Lifecycle` over the channels' committed definitions."""

    def __init__(
        self,
        *,
        readers: Callable[[str], DefinitionReader | None],
        package_ids: Mapping[str, str],
        installed: InstalledPackages | None = None,
    ) -> None:
        """`readers` gives a channel's committed state (None for an unknown channel);
        `package_ids` maps chaincode names to the package this peer runs for them;
        `installed` finds (and starts) the package installed through `_lifecycle`
        that this peer's organisation approved, for names `package_ids` lacks."""
        self._readers = readers
        self._package_ids = dict(package_ids)
        self._installed = installed
        self._cache: dict[tuple[str, str], ChaincodeDefinition] = {}

    def endorsement_info(
        self, channel_id: str, chaincode_name: str, simulator: TxSimulator
    ) -> EndorsementInfo:
        """The committed definition and local package of a chaincode.

        Raises:
            ChaincodeError: not defined on the channel, changed during the call, or
                no package for it on this peer.
        """
        sequence = _sequence(simulator, chaincode_name)
        if sequence == 0:
            raise ChaincodeError(
                f"chaincode {chaincode_name} is not defined on channel {channel_id}"
            )
        definition = self._definition(channel_id, chaincode_name, sequence)
        package_id = self._package_ids.get(chaincode_name)
        if package_id is None and self._installed is not None:
            package_id = self._installed(channel_id, definition)
        if package_id is None:
            raise ChaincodeError(
                f"chaincode definition for '{chaincode_name}' exists, but chaincode "
                "is not installed"
            )
        return EndorsementInfo(definition=definition, package_id=package_id)

    def chaincode_info(
        self, channel_id: str, chaincode_name: str, simulator: TxSimulator
    ) -> ChaincodeInfo:
        info = self.endorsement_info(channel_id, chaincode_name, simulator)
        return ChaincodeInfo(
            package_id=info.package_id,
            version=info.definition.version,
            enforce_init=info.definition.init_required,
        )

    def _definition(
        self, channel_id: str, chaincode_name: str, sequence: int
    ) -> ChaincodeDefinition:
        cached = self._cache.get((channel_id, chaincode_name))
        if cached is not None and cached.sequence == sequence:
            return cached
        reader = self._readers(channel_id)
        if reader is None:
            raise ChaincodeError(f"channel {channel_id} not found")
        try:
            definition = read_definition(reader, chaincode_name)
        except ChaincodeDefinitionError as error:
            raise ChaincodeError(str(error)) from error
        if definition is None or definition.sequence != sequence:
            found = 0 if definition is None else definition.sequence
            raise ChaincodeError(
                f"chaincode definition for '{chaincode_name}' changed during invoke: "
                f"sequence {sequence} simulated, {found} committed"
            )
        self._cache[(channel_id, chaincode_name)] = definition
        return definition


def _sequence(simulator: TxSimulator, chaincode_name: str) -> int:
    """The committed sequence (0: not defined), read through the simulator."""
    data = simulator.get_state(
        LIFECYCLE_NAMESPACE, field_key(chaincode_name, "Sequence")
    )
    if not data:
        return 0
    state = db_pb2.StateData()
    try:
        state.ParseFromString(data)
    except DecodeError as error:
        raise ChaincodeError(
            f"the sequence of chaincode {chaincode_name} does not decode: {error}"
        ) from error
    if state.WhichOneof("Type") != "Int64":
        raise ChaincodeError(f"the sequence of chaincode {chaincode_name} is no Int64")
    return state.Int64
