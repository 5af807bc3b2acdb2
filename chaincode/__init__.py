"""The Python chaincode SDK (shim and contract API) and the hospital chaincodes."""
