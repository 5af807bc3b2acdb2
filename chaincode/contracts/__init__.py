"""Chaincode written with the contract API: the sample asset contract and the hospital ones."""
