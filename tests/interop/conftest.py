"""Prerequisites for the interop tests: Node.js and the official Fabric npm packages.

The packages are installed with `npm ci` from the committed lockfile the first time
they are needed, so a fresh machine with Node.js needs no manual step.

The official Python chaincode package, fabric-chaincode-python, comes from pip
(the `test` extra).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

NODE_DIR = Path(__file__).parent / "node"
CHAINCODE_DIR = Path(__file__).parent / "chaincode-node"
NPM_CI_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def node_packages() -> Path:
    """The folder holding golden.js with its node_modules installed."""
    return npm_installed(NODE_DIR, Path("@hyperledger") / "fabric-gateway")


@pytest.fixture(scope="session")
def chaincode_node() -> Path:
    """The folder of the Node contracts with node_modules installed (`npm ci` on first use)."""
    return npm_installed(CHAINCODE_DIR, Path("fabric-shim"))


def npm_installed(folder: Path, package: Path) -> Path:
    """`folder` after `npm ci`, run when `node_modules/<package>` is missing.

    Skips (fails under MEDLEDGER_REQUIRE_ALL=1) without node and npm or when npm fails.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        skip_or_fail(
            "node and npm are needed for the Fabric interop tests (apt nodejs npm)"
        )
    if not (folder / "node_modules" / package).is_dir():
        install = subprocess.run(
            ["npm", "ci", "--no-fund", "--no-audit"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
            check=False,
        )
        if install.returncode != 0:
            skip_or_fail(f"npm ci failed in {folder}: {install.stderr.strip()[-500:]}")
    return folder


PYTHON_CHAINCODE = Path(__file__).parent / "chaincode-python" / "asset_chaincode.py"


@pytest.fixture(scope="session")
def python_chaincode() -> Path:
    """The asset chaincode script for `fabric-chaincode-python` (PyPI), when installed.

    Only located, never imported here: the package loads the official Fabric protos,
    which must stay out of the test process.
    """
    if importlib.util.find_spec("fabric_chaincode_python") is None:
        skip_or_fail(
            "fabric-chaincode-python is needed for the Python chaincode interop test"
            " (pip install fabric-chaincode-python==2.5.4, in the test extra)"
        )
    return PYTHON_CHAINCODE
