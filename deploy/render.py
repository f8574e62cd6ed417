"""Fill deploy/'s templates: nginx.conf and pgbouncer.ini for N instances.

    python -m deploy.render --ports 8001,8002,8003 --out /etc/astegni/rendered
    python -m deploy.render --target compose --out deploy/compose   # what compose.yaml mounts

writes nginx.conf and pgbouncer.ini with production paths (the defaults below); make
test-deploy renders the same templates into a temporary directory with its own. Fields are
{{NAME}}; nginx's own $variables pass through untouched.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from astegni.core.http_headers import PAGE_POLICY

DEPLOY_DIR = Path(__file__).resolve().parent
PROJECT_DIR = DEPLOY_DIR.parent
_FIELD = re.compile(r"\{\{([A-Z_]+)\}\}")


def render(template: str, values: dict[str, object]) -> str:
    """The template with every {{NAME}} replaced; a field without a value is an error."""
    text = (DEPLOY_DIR / template).read_text()
    missing = sorted({name for name in _FIELD.findall(text) if name not in values})
    if missing:
        raise KeyError(f"{template}: no value for {', '.join(missing)}")
    return _FIELD.sub(lambda match: str(values[match.group(1)]), text)


def upstream_servers(addresses: list[str], max_fails: int = 2, fail_timeout: str = "5s") -> str:
    return "\n".join(
        f"        server {address} max_fails={max_fails} fail_timeout={fail_timeout};"
        for address in addresses
    )


def nginx_conf(
    *,
    listen: str,
    upstreams: list[str],
    static_dir: Path,
    run_dir: Path,
    log_dir: Path,
    state_dir: Path,
    user: str | None = "www-data",
    mime_types: str = "/etc/nginx/mime.types",
    worker_processes: str = "auto",
) -> str:
    return render(
        "nginx.conf.in",
        {
            "USER_DIRECTIVE": f"user {user};" if user else "",
            "WORKER_PROCESSES": worker_processes,
            "RUN_DIR": run_dir,
            "LOG_DIR": log_dir,
            "STATE_DIR": state_dir,
            "MIME_TYPES": mime_types,
            "UPSTREAM_SERVERS": upstream_servers(upstreams),
            "LISTEN": listen,
            "STATIC_DIR": static_dir,
            "PAGE_POLICY": PAGE_POLICY,
        },
    )


def pgbouncer_ini(
    *,
    db_name: str,
    pg_host: str,
    pg_port: int,
    listen_addr: str,
    listen_port: int,
    auth_file: Path,
    run_dir: Path,
    pool_size: int,
    max_client_conn: int,
    logfile: str = "",
) -> str:
    return render(
        "pgbouncer.ini.in",
        {
            "DB_NAME": db_name,
            "PG_HOST": pg_host,
            "PG_PORT": pg_port,
            "LISTEN_ADDR": listen_addr,
            "LISTEN_PORT": listen_port,
            "AUTH_FILE": auth_file,
            "RUN_DIR": run_dir,
            "POOL_SIZE": pool_size,
            "MAX_CLIENT_CONN": max_client_conn,
            "LOGFILE": logfile,
        },
    )


def connections_per_process(pool_size: int) -> int:
    """What one uvicorn worker may hold at once: pool_size connections for transactions and as
    many for single statements (astegni/core/database.py), the real-time listener, the event
    Sender, the expiry sweep's (outside the admission: it runs on a thread of its own), and the
    one that applies the schema at start-up."""
    return 2 * pool_size + 4


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", choices=("host", "compose"), default="host",
                        help="host: nginx, PgBouncer and instances on one machine under systemd;"
                        " compose: the containers of deploy/compose.yaml")  # fmt: skip
    parser.add_argument("--ports", default="8001,8002,8003", help="host: the instances' ports on 127.0.0.1")
    parser.add_argument("--instances", type=int, default=3, help="compose: app containers app1..appN")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--db-name", default="astegni")
    parser.add_argument("--pg-host", default=None, help="default: 127.0.0.1 (host), postgres (compose)")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--workers", type=int, default=2, help="WORKERS per instance")
    parser.add_argument("--db-pool-size", type=int, default=5)
    args = parser.parse_args()

    if args.target == "host":
        upstreams = [f"127.0.0.1:{port.strip()}" for port in args.ports.split(",") if port.strip()]
    else:
        upstreams = [f"app{n}:8000" for n in range(1, args.instances + 1)]
    per_process = connections_per_process(args.db_pool_size)
    clients = len(upstreams) * args.workers * per_process
    host = args.target == "host"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nginx.conf").write_text(
        nginx_conf(
            listen="80",
            upstreams=upstreams,
            static_dir=Path("/opt/astegni/static" if host else "/srv/astegni/static"),
            run_dir=Path("/run" if host else "/var/run"),
            log_dir=Path("/var/log/nginx"),
            state_dir=Path("/var/lib/nginx" if host else "/var/cache/nginx"),
            user="www-data" if host else "nginx",
        )
    )
    (args.out / "pgbouncer.ini").write_text(
        pgbouncer_ini(
            db_name=args.db_name,
            pg_host=args.pg_host or ("127.0.0.1" if host else "postgres"),
            pg_port=args.pg_port,
            listen_addr="127.0.0.1" if host else "0.0.0.0",
            listen_port=6432,
            auth_file=Path("/etc/pgbouncer/userlist.txt"),
            run_dir=Path("/run/postgresql" if host else "/tmp"),
            pool_size=clients,
            max_client_conn=clients + 20,
            logfile="/var/log/postgresql/pgbouncer.log" if host else "",
        )
    )
    print(f"wrote {args.out}/nginx.conf and {args.out}/pgbouncer.ini")
    print(
        f"{len(upstreams)} instances x {args.workers} workers x {per_process} connections:"
        f" up to {clients} PostgreSQL connections through PgBouncer"
    )


if __name__ == "__main__":
    main()
