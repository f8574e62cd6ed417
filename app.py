"""The Astegni session-request service: the FastAPI app and `python app.py` to serve it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg2
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

import session_request_endpoints
from astegni.accounts import router as accounts
from astegni.chat import router as chat
from astegni.core import log_redaction
from astegni.core.api_docs import install_docs
from astegni.core.database import Database
from astegni.core.errors import ServiceUnavailable
from astegni.core.housekeeping import sweep_forever
from astegni.core.http import RequestMiddleware, install_error_handlers
from astegni.core.schema import apply_schema
from astegni.core.settings import DATA_DIR, Settings, get_settings
from astegni.notifications.router import router as notifications_router
from astegni.notifications.sender import send_forever
from astegni.realtime import endpoint as realtime_endpoint
from astegni.realtime import service as realtime
from astegni.tutors import router as tutors

log = logging.getLogger("astegni")
STATIC_DIR = Path(__file__).resolve().parent / "static"
SHUTDOWN_TASK_SECONDS = 10


async def _prepare_database(app: FastAPI) -> None:
    """Apply the schema (and demo data) as soon as the database answers; retried until then."""
    settings: Settings = app.state.settings
    db: Database = app.state.db
    delay = 0.5
    while True:
        try:
            await asyncio.to_thread(_apply, db, settings)
            app.state.schema_ready = True
            log.info("database ready")
            return
        except (ServiceUnavailable, psycopg2.OperationalError) as exc:  # down at start: keep trying
            log.warning("database not ready (%s); retrying in %.1fs", str(exc).strip()[:200], delay)
        except Exception:  # a broken schema or demo load: say so loudly, still retry
            log.exception("preparing the database failed; retrying in %.1fs", delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5)


def _apply(db: Database, settings: Settings, banner: bool = False) -> None:
    """The schema, and the demo data when asked for; the demo logins are printed when loaded
    now, or always with banner=True."""
    conn = db.connect()
    try:
        apply_schema(conn)
        if settings.load_demo_data:
            from astegni.demo import demo_banner, load_demo_data

            if load_demo_data(conn, settings) or banner:
                print(demo_banner(conn, _base_url(settings)), flush=True)
    finally:
        conn.close()


def _base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    dsn = settings.database_url or _embedded_url()
    db = Database(
        dsn,
        pool_size=settings.db_pool_size,
        wait_seconds=settings.db_pool_wait_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    app.state.db = db
    app.state.schema_ready = False
    tasks = [asyncio.create_task(_prepare_database(app))]
    tasks.append(asyncio.create_task(sweep_forever(app)))
    tasks.append(asyncio.create_task(send_forever(app)))  # the email outbox
    tasks.append(asyncio.create_task(db.sender.run()))  # real-time events, after their commits
    app.state.realtime = realtime.Realtime(db, max_sockets_per_user=settings.ws_max_sockets_per_user)
    tasks.append(asyncio.create_task(app.state.realtime.run()))
    # What is alive now (modules, the app, pydantic's validators) lives as long as the process.
    # Frozen, it is out of the collector's sight: a full collection under load had paused the
    # event loop for ~90 ms, which was most of make bench's p99.
    gc.freeze()
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        # Bounded: a task stuck past its cancellation must not hold the shutdown for ever.
        _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_TASK_SECONDS)
        for task in stuck:
            log.warning("background task still running at shutdown: %r", task.get_coro())
        db.close()


def _embedded_url() -> str:
    from astegni.core.embedded import start_embedded_postgres

    return start_embedded_postgres(DATA_DIR / "pg")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Astegni session requests",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves /docs; ReDoc is not offered
        redoc_url=None,
        description="Tutoring marketplace backend: accounts, packages, session requests, chat.",
    )
    app.state.settings = settings
    # Here, not in main(): uvicorn configures logging afresh in each worker (spawned, so without
    # main()'s root handler) before this runs, and the filter must sit on every handler.
    _configure_logging(settings)
    log_redaction.install()
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(RequestMiddleware, max_header_bytes=settings.max_request_header_bytes)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Database unavailable"}})
    async def readyz() -> JSONResponse:
        db: Database = app.state.db
        ready = app.state.schema_ready and await db.ping()
        status = 200 if ready else 503
        return JSONResponse({"status": "ready" if ready else "unavailable"}, status_code=status)

    app.include_router(accounts.router)
    app.include_router(session_request_endpoints.router)
    app.include_router(tutors.router)
    app.include_router(chat.router)
    app.include_router(realtime_endpoint.router)
    install_docs(app)
    app.include_router(notifications_router)
    if STATIC_DIR.is_dir():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app


def _configure_logging(settings: Settings) -> None:
    """A root handler for the astegni loggers (a no-op where one exists already)."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


def main() -> None:
    settings = get_settings()
    _configure_logging(settings)
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM, then restores this handler and raises SIGTERM
    # again: exiting through SystemExit rather than the default kill lets the embedded server stop.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    server = None
    try:
        if settings.embedded:
            # Started here, in the parent, so that every worker shares it and Ctrl-C / SIGTERM of
            # this process stops it.
            from astegni.core.embedded import embedded_server

            server = embedded_server(DATA_DIR / "pg")
            os.environ["DATABASE_URL"] = server.get_uri()
            os.environ.setdefault("LOAD_DEMO_DATA", "true")
            os.environ["SECRET_KEY"] = settings.secret_key or ""
            get_settings.cache_clear()
            settings = get_settings()
            # Ready before serving, so that the logins printed below already work.
            _apply(Database(settings.database_url or ""), settings, banner=True)
        uvicorn.run(
            "app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            loop="uvloop",
            http="httptools",
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            # No permessage-deflate, for events that are small JSON documents: each socket's
            # zlib state cost ~100 KB after the soak's warm-up (100 sockets per worker: 89-96 MiB
            # against 78-80 MiB without) and grew as its window filled (+5-7% in 4 minutes,
            # against +1-2% without).
            ws_per_message_deflate=False,
            # Larger client frames are closed with 1009 before they are read into memory.
            ws_max_size=realtime_endpoint.MAX_FRAME_BYTES,
        )
    finally:
        if server is not None:
            from astegni.core.embedded import stop_embedded_postgres

            stop_embedded_postgres(server)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
