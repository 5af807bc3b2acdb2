"""The orderer test material, built once per session."""

from __future__ import annotations

import pytest

from network.orderer_material import OrdererMaterial, build_orderer_material


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_orderer_material(tmp_path_factory.mktemp("orderer-material"))
