"""Contract metadata: what `org.hyperledger.fabric:GetMetadata` returns.

The shape follows fabric-contract-api's metadata (contracts by name with their info and
transactions, parameters with JSON schemas, shared schemas under `components`), so
tools that read Node chaincode metadata can read ours.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from chaincode.contract.contract import Contract, TransactionSpec
from chaincode.contract.conversion import json_schema

SYSTEM_CONTRACT = "org.hyperledger.fabric"
"""The contract every contract chaincode also serves (`GetMetadata`)."""
SCHEMA_URL = (
    "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json"
)


def chaincode_metadata(
    contracts: Mapping[str, tuple[Contract, Mapping[str, TransactionSpec]]],
    *,
    default: str,
    title: str,
    version: str,
) -> dict[str, object]:
    """The metadata document of a chaincode made of `contracts` (a JSON-ready dict)."""
    schemas: dict[str, object] = {}
    entries: dict[str, object] = {
        name: _contract_entry(
            contract, transactions, is_default=name == default, schemas=schemas
        )
        for name, (contract, transactions) in contracts.items()
    }
    entries[SYSTEM_CONTRACT] = _system_entry()
    return {
        "$schema": SCHEMA_URL,
        "info": {"title": title or default, "version": version},
        "contracts": entries,
        "components": {"schemas": schemas},
    }


def _contract_entry(
    contract: Contract,
    transactions: Mapping[str, TransactionSpec],
    *,
    is_default: bool,
    schemas: dict[str, object],
) -> dict[str, object]:
    return {
        "name": contract.name,
        "contractInstance": {"name": contract.name, "default": is_default},
        "info": {"title": contract.title, "version": contract.version},
        "transactions": [
            _transaction_entry(spec, schemas) for spec in transactions.values()
        ],
    }


def _transaction_entry(
    spec: TransactionSpec, schemas: dict[str, object]
) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": spec.name,
        "tag": ["EVALUATE"] if spec.evaluate else ["SUBMIT", "submitTx"],
        "parameters": [
            {
                "name": parameter.name,
                "schema": json_schema(parameter.annotation, schemas),
            }
            for parameter in spec.parameters
        ],
    }
    if spec.returns not in (type(None), inspect.Parameter.empty):
        entry["returns"] = json_schema(spec.returns, schemas)
    return entry


def _system_entry() -> dict[str, object]:
    return {
        "name": SYSTEM_CONTRACT,
        "contractInstance": {"name": SYSTEM_CONTRACT, "default": False},
        "info": {"title": SYSTEM_CONTRACT, "version": ""},
        "transactions": [
            {
                "name": "GetMetadata",
                "tag": ["EVALUATE"],
                "parameters": [],
                "returns": {"type": "string"},
            },
        ],
    }
