"""Where the service keeps its files: `make run`'s embedded PostgreSQL, its generated secret key
and its .eml outbox live under the checkout's .data/, which the README names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def data_dir(env: dict[str, str]) -> str:
    script = "from astegni.core.settings import DATA_DIR; print(DATA_DIR)"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=CHECKOUT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_data_directory_is_the_checkouts_dot_data_unless_moved():
    env = {k: v for k, v in os.environ.items() if k != "ASTEGNI_DATA_DIR"}
    assert Path(data_dir(env)) == CHECKOUT / ".data"
    assert data_dir(env | {"ASTEGNI_DATA_DIR": "/tmp/elsewhere"}) == "/tmp/elsewhere"
