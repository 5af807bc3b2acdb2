"""The shared kernel of medledger: crypto, MSP identities, policies and wire helpers.

Both the peer and the orderer build on this package; it imports only `protos` and
third-party libraries, never another medledger package.
"""
