"""The `_lifecycle` namespace: committed chaincode definitions, as Fabric 2.5 stores them.

`definitions` reads and writes the public definition keys; the lifecycle system chaincode
(install, approve, commit) builds on it. `indexes` and `index_deployer` create the CouchDB
indexes a package ships in the channel database once it serves a committed definition.
"""

from peer.lifecycle.definitions import (
    DEFAULT_ENDORSEMENT_PLUGIN,
    DEFAULT_ENDORSEMENT_POLICY_REF,
    DEFAULT_VALIDATION_PLUGIN,
    DEFINITION_FIELDS,
    DEFINITION_TYPE,
    LIFECYCLE_CHAINCODE_VERSION,
    LIFECYCLE_ENDORSEMENT_POLICY_REF,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    DefinitionReader,
    default_endorsement_policy,
    definition_writes,
    field_key,
    metadata_key,
    read_definition,
    signature_endorsement_policy,
)

__all__ = [
    "DEFAULT_ENDORSEMENT_PLUGIN",
    "DEFAULT_ENDORSEMENT_POLICY_REF",
    "DEFAULT_VALIDATION_PLUGIN",
    "DEFINITION_FIELDS",
    "DEFINITION_TYPE",
    "LIFECYCLE_CHAINCODE_VERSION",
    "LIFECYCLE_ENDORSEMENT_POLICY_REF",
    "LIFECYCLE_NAMESPACE",
    "ChaincodeDefinition",
    "DefinitionReader",
    "default_endorsement_policy",
    "definition_writes",
    "field_key",
    "metadata_key",
    "read_definition",
    "signature_endorsement_policy",
]
