"""The gateway service and the Python client applications use to reach it.

Server (one process per organisation, `medledger gateway start -c gateway.yaml`):

    node.py             the process: listener, jobs, ordered stop
    service.py          gateway.Gateway wiring; deliver_proxy.py: protos.Deliver relayed
    evaluate.py  endorse.py  submit.py  commit_status.py  chaincode_events.py
                        one module per RPC
    planner.py          policies → minimal endorsement layouts (pure)
    interest.py         chaincode interest → the policies a proposal needs (pure)
    definitions.py      chaincode definitions from committed `_lifecycle` writes (pure)
    blocks.py           committed blocks → tx codes, events, definition writes (pure)
    channels.py         per-channel view (config, definitions, commits) fed from a peer
    commit.py           commit tracking for CommitStatus; ledger.py: qscc look-ups
    registry.py         peers by organisation with their heights; endorsers.py: one call
    orderers.py  connections.py  config.py  context.py  errors.py  diff.py

Client: `gateway.client` (Gateway → Network → Contract), `gateway.cli` the commands.
"""
