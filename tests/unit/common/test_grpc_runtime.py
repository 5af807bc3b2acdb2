"""The gRPC runtime defaults: set when absent, an operator's value kept."""

from __future__ import annotations

import subprocess
import sys

from common.grpc_runtime import GRPC_EXPERIMENTS_DEFAULT, apply_runtime_defaults


def test_the_default_is_set_when_absent() -> None:
    environ: dict[str, str] = {}
    apply_runtime_defaults(environ)
    assert environ == {"GRPC_EXPERIMENTS": GRPC_EXPERIMENTS_DEFAULT}


def test_an_operator_value_is_kept() -> None:
    environ = {"GRPC_EXPERIMENTS": "event_engine_client"}
    apply_runtime_defaults(environ)
    assert environ == {"GRPC_EXPERIMENTS": "event_engine_client"}


def test_the_command_sets_it_before_grpc_is_imported() -> None:
    script = (
        "import os, sys\n"
        "os.environ.pop('GRPC_EXPERIMENTS', None)\n"
        "from network.cli import main\n"
        "assert 'grpc' not in sys.modules\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(os.environ['GRPC_EXPERIMENTS'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == GRPC_EXPERIMENTS_DEFAULT


def test_the_test_process_runs_with_the_node_defaults() -> None:
    """The pytest plugin applied the defaults before gRPC was imported here."""
    import os

    assert os.environ.get("GRPC_EXPERIMENTS") == GRPC_EXPERIMENTS_DEFAULT
