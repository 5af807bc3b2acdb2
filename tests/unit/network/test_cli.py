"""The `medledger` console command: help, version, and clear errors for bad input.

Runs the real console script in a subprocess, as a user would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from network.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "network.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    """`medledger --help` exits 0 and names the subcommands."""
    result = run_cli("--help")

    assert result.returncode == 0
    assert "crypto" in result.stdout


def test_console_script_is_installed() -> None:
    """The `medledger` entry point from pyproject.toml is on PATH next to python."""
    script = Path(sys.executable).parent / "medledger"
    found = str(script) if script.exists() else shutil.which("medledger")
    if found is None:
        pytest.skip("medledger is not installed as a console script (pip install -e .)")
    result = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0
    assert result.stdout.startswith("medledger ")


def test_no_command_prints_help_and_fails() -> None:
    assert main([]) == 2


def test_crypto_generate_writes_material(tmp_path: Path) -> None:
    """The default spec (the hospital example) yields one folder per organisation."""
    result = run_cli("crypto", "generate", "-o", str(tmp_path / "crypto"))

    assert result.returncode == 0, result.stderr
    organizations = sorted(
        p.name for p in (tmp_path / "crypto" / "organizations").iterdir()
    )
    assert organizations == [
        "commission.example.com",
        "hospital-a.example.com",
        "hospital-b.example.com",
        "hospital-c.example.com",
    ]


def test_missing_spec_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("crypto", "generate", "-c", str(tmp_path / "nope.yaml"), "-o", "x")

    assert result.returncode == 1
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_spec_names_the_key(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("consortium: x\norganizations:\n  - name: A\n    mspid: 'A B'\n")

    result = run_cli("crypto", "generate", "-c", str(spec), "-o", str(tmp_path / "out"))

    assert result.returncode == 1
    assert "organizations[0]" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("frobnicate")

    assert result.returncode == 2
    assert "invalid choice" in result.stderr
