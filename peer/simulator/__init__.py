"""Transaction simulation: a transaction's reads and writes against a state snapshot.

- `simulator`: `TxSimulator`, Fabric's semantics for every state request.
- `rwset`: `RwSetBuilder` and `SimulationResults`, the deterministic rwset bytes.
- `rangequery`: raw reads or Merkle summaries of range queries (phantom checks).
- `iterators`: the result iterators handed to the chaincode handler.
- `reader`: the `StateReader` seam, its ledger implementation and `Snapshots`.
"""

from peer.simulator.reader import LedgerStateReader, Snapshot, Snapshots, StateReader
from peer.simulator.rwset import RwSetBuilder, SimulationResults
from peer.simulator.simulator import (
    CollectionValidator,
    TxSimulator,
    open_simulator,
    validate_key,
)

__all__ = [
    "CollectionValidator",
    "LedgerStateReader",
    "RwSetBuilder",
    "SimulationResults",
    "Snapshot",
    "Snapshots",
    "StateReader",
    "TxSimulator",
    "open_simulator",
    "validate_key",
]
