"""The sample asset-transfer chaincode.

Serve it with `python -m chaincode serve --module chaincode.contracts.asset ...`.
"""

from chaincode.contracts.asset.contract import OWNER_INDEX, Asset, AssetTransfer

contracts = [AssetTransfer()]
"""What `python -m chaincode serve --module chaincode.contracts.asset` serves."""

__all__ = ["OWNER_INDEX", "Asset", "AssetTransfer", "contracts"]
