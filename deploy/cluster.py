"""The production topology on one machine, for make test-deploy: PgBouncer, N `python app.py`
instances and nginx, each its own process group on 127.0.0.1, configured from deploy/'s
templates in a temporary directory, on a fresh database made for the run.

Nothing needs root-only paths: nginx runs with `-p <tmp> -c <tmp>/nginx.conf` and PgBouncer
with its own ini, auth file and pid file, in the foreground. Everything is stopped, and the
database dropped, by close(), which also runs at exit and on SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
from psycopg2 import sql

from deploy.render import PROJECT_DIR, nginx_conf, pgbouncer_ini
from tests import pg
from tests.support.live import free_port

WAIT_READY = PROJECT_DIR / "deploy" / "wait-ready"
SECRET_KEY = secrets.token_urlsafe(48)


class Instance:
    """One `python app.py` on its own port; started, stopped, killed like a systemd unit."""

    def __init__(self, db_url: str, log_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"app-{self.port}.log"
        self.env = os.environ | env | {"DATABASE_URL": db_url, "PORT": str(self.port)}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(PROJECT_DIR / "app.py")],
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, seconds: float = 60) -> None:
        """The unit's ExecStartPost: deploy/wait-ready on /readyz."""
        result = subprocess.run([sys.executable, str(WAIT_READY), f"{self.url}/readyz", str(seconds)])
        if result.returncode != 0:
            raise RuntimeError(f"instance {self.port} not ready:\n{self.log_tail()}")

    def terminate(self, seconds: float = 30) -> None:
        """systemctl stop: SIGTERM, then SIGKILL after TimeoutStopSec."""
        if self.process is None or self.process.poll() is not None:
            return
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


class Cluster:
    def __init__(self, instances: int = 3, app_env: dict[str, str] | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="astegni-deploy-"))
        self.tmp.chmod(0o755)  # nginx's workers and PgBouncer run as nobody when started by root
        self.processes: list[subprocess.Popen] = []
        self.instances: list[Instance] = []
        self.admin_url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        self.db_name: str | None = None
        self.closed = False
        atexit.register(self.close)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            self._start(instances, app_env or {})
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ start

    def _start(self, count: int, app_env: dict[str, str]) -> None:
        self.db_name = pg.new_name("astegni_test_deploy")
        self.direct_url = pg.create_database(self.admin_url, self.db_name)
        with contextlib.closing(pg.admin_connect(self.direct_url)) as conn, conn.cursor() as cur:
            # What the app asks for in the "options" startup parameter, which PgBouncer drops.
            for setting in ("SET statement_timeout = 5000", "SET timezone = 'UTC'"):
                cur.execute(sql.SQL("ALTER DATABASE {} " + setting).format(sql.Identifier(self.db_name)))
        pooled_url = self._start_pgbouncer(pool_size=count * 14 + 6)
        env = {
            "SECRET_KEY": SECRET_KEY,
            "WORKERS": "1",
            "DB_POOL_SIZE": "5",
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "64",
            "REQUEST_RATE_PER_MINUTE": "0",
            "LOG_LEVEL": "warning",
            "LOAD_DEMO_DATA": "true",
        } | app_env
        self.instances = [Instance(pooled_url, self.tmp, env) for _ in range(count)]
        # The first one applies the schema and the demo data alone; the others find them there.
        for index, instance in enumerate(self.instances):
            instance.start()
            if index == 0:
                instance.wait_ready()
        for instance in self.instances:
            instance.wait_ready()
        self._start_nginx()

    def _start_pgbouncer(self, pool_size: int) -> str:
        parts = urlsplit(self.admin_url)
        user = parts.username or "postgres"
        password = parts.password or secrets.token_urlsafe(16)
        run_dir = self.tmp / "pgbouncer"
        run_dir.mkdir()
        auth_file = run_dir / "userlist.txt"
        auth_file.write_text(f'"{user}" "{password}"\n')
        self.pgbouncer_port = free_port()
        ini = run_dir / "pgbouncer.ini"
        ini.write_text(
            pgbouncer_ini(
                db_name=self.db_name,
                pg_host=parts.hostname or "127.0.0.1",
                pg_port=parts.port or 5432,
                listen_addr="127.0.0.1",
                listen_port=self.pgbouncer_port,
                auth_file=auth_file,
                run_dir=run_dir,
                pool_size=pool_size,
                max_client_conn=pool_size + 20,
            )
        )
        command = ["/usr/sbin/pgbouncer", str(ini)]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            nobody = pwd.getpwnam("nobody")
            for path in (run_dir, auth_file, ini):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            command[1:1] = ["-u", "nobody"]
        self._spawn(command, "pgbouncer.log")
        url = f"postgresql://{user}:{password}@127.0.0.1:{self.pgbouncer_port}/{self.db_name}"
        deadline = time.monotonic() + 15
        while True:
            try:
                psycopg2.connect(url, connect_timeout=2).close()
                return url
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PgBouncer did not answer:\n{self.log('pgbouncer.log')}") from None
                time.sleep(0.1)

    def _start_nginx(self) -> None:
        prefix = self.tmp / "nginx"
        for name in ("run", "logs", "state"):
            (prefix / name).mkdir(parents=True)
        self.nginx_port = free_port()
        self.url = f"http://127.0.0.1:{self.nginx_port}"
        conf = prefix / "nginx.conf"
        conf.write_text(
            nginx_conf(
                listen=f"127.0.0.1:{self.nginx_port}",
                upstreams=[f"127.0.0.1:{instance.port}" for instance in self.instances],
                static_dir=PROJECT_DIR / "static",
                run_dir=prefix / "run",
                log_dir=prefix / "logs",
                state_dir=prefix / "state",
                user="nobody nogroup" if os.geteuid() == 0 else None,
                # One worker: its round robin alone decides where connections go, so that
                # consecutive WebSockets land on consecutive instances.
                worker_processes="1",
            )
        )
        command = [
            "/usr/sbin/nginx",
            "-p",
            str(prefix),
            "-c",
            str(conf),
            "-e",
            str(prefix / "logs/error.log"),
        ]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
        self._spawn([*command, "-g", "daemon off;"], "nginx.log")
        result = subprocess.run([sys.executable, str(WAIT_READY), f"{self.url}/readyz", "15"])
        if result.returncode != 0:
            raise RuntimeError(f"nginx not answering:\n{self.log('nginx/logs/nginx-error.log')}")

    def _spawn(self, command: list[str], log_name: str) -> None:
        with (self.tmp / log_name).open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    # ------------------------------------------------------------------ stop

    def close(self) -> None:
        """Everything stopped and the database dropped, whatever state the run left."""
        if self.closed:
            return
        self.closed = True
        for instance in self.instances:
            instance.terminate(10)
        for process in reversed(self.processes):  # nginx, then PgBouncer
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if self.db_name is not None:
            with contextlib.suppress(psycopg2.Error):
                pg.drop_database(self.admin_url, self.db_name)
        shutil.rmtree(self.tmp, ignore_errors=True)
