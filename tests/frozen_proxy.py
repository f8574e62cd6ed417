"""A TCP proxy to PostgreSQL that can go silent: what a dead host or a cut network looks like
to the app (no error, no FIN, nothing), which a stopped server cannot imitate."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from psycopg2.extensions import make_dsn, parse_dsn


class FrozenProxy:
    def __init__(self, target_url: str) -> None:
        target = parse_dsn(target_url)
        host, port = target.get("host") or "127.0.0.1", int(target.get("port") or 5432)
        # The embedded server listens on a Unix socket only (host is its directory).
        self._target: tuple[int, Any] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
            if host.startswith("/")
            else (socket.AF_INET, (host, port))
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = make_dsn(target_url, host="127.0.0.1", port=self._listener.getsockname()[1])
        self.frozen = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                family, address = self._target
                upstream = socket.socket(family, socket.SOCK_STREAM)
                upstream.connect(address)
                self._sockets += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.frozen.is_set():  # frozen: swallowed, as by a network that is gone
                    sink.sendall(data)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def frozen_proxy(target_url: str) -> Iterator[FrozenProxy]:
    proxy = FrozenProxy(target_url)
    try:
        yield proxy
    finally:
        proxy.close()
