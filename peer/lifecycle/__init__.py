"""The `_lifecycle` namespace: committed chaincode definitions, as Fabric 2.5 stores them.

`definitions` reads and writes the public definition keys; the lifecycle system chaincode
(install, approve, commit) builds on it. `indexes` and `index_deployer` create the CouchDB
indexes a package ships in the channel database once it serves a committed definition.
The package re-exports the public names of `definitions`.
"""

from peer.lifecycle.definitions import *  # noqa: F403
from peer.lifecycle.definitions import __all__ as __all__
