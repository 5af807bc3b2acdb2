"""Private data between the peers of a channel (issue 7).

- `members`: which organisations a collection has, and checking a signing peer;
- `directory`: the other peers this one knows per channel, and dialling them;
- `dissemination`: the endorser pushes private write sets to member peers;
- `service`: the `medledger.peer.v1.PrivateDataService` servicer (Push, Pull);
- `pull`: before a block commits, plaintext this peer lacks is pulled from members;
- `reconcile`: a background job that fills missing private data later.
"""
