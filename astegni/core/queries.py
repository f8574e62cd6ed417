"""Named SQL blocks, loaded once from .sql files and run as server-side prepared statements.

A file holds blocks that start with a `-- name: some_query` line, written as plain SQL with
`%(param)s` parameters. Planning dominates the cost of our short queries, so each connection
PREPAREs a query the first time it runs it and EXECUTEs it afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parent.parent  # astegni/: "chat/queries.sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_PARAM = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Query:
    name: str
    sql: str

    # Derived once: execute() runs on every request.
    @cached_property
    def params(self) -> list[str]:
        return list(dict.fromkeys(_PARAM.findall(self.sql)))

    @cached_property
    def prepare_sql(self) -> str:
        numbers = {name: i for i, name in enumerate(self.params, 1)}
        body = _PARAM.sub(lambda m: f"${numbers[m.group(1)]}", self.sql).replace("%%", "%")
        return f"PREPARE {self.name} AS {body}"

    @cached_property
    def execute_sql(self) -> str:
        if not self.params:
            return f"EXECUTE {self.name}"
        return f"EXECUTE {self.name} ({', '.join(f'%({p})s' for p in self.params)})"


# Which file defines each query name: a connection caches prepared statements by name, so a name
# must mean one query in the whole service.
_DEFINED_IN: dict[str, str] = {}


class DuplicateQueryName(ValueError):
    pass


class Queries:
    """The named queries of one .sql file, as attributes: `queries.find_user`."""

    def __init__(self, filename: str) -> None:
        text = (SQL_DIR / filename).read_text()
        parts = _NAME.split(text)
        self._queries: dict[str, Query] = {}
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in self._queries or _DEFINED_IN.setdefault(name, filename) != filename:
                where = _DEFINED_IN[name]
                raise DuplicateQueryName(f"query {name!r} of {filename} is also defined in {where}")
            self._queries[name] = Query(name, body.strip().rstrip(";"))

    def __getattr__(self, name: str) -> Query:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(name) from None


def execute(cur: Any, query: Query, params: dict[str, Any] | None = None) -> None:
    """Run a named query on cur as a prepared statement (PREPAREd once per connection)."""
    conn = cur.connection
    prepared = getattr(conn, "prepared", None)
    if prepared is None:  # a plain connection (scripts): no statement cache
        cur.execute(query.sql, params)
        return
    if query.name not in prepared:
        cur.execute(query.prepare_sql)
        prepared.add(query.name)
    cur.execute(query.execute_sql, params or {})


def fetch_one(cur: Any, query: Query, params: dict[str, Any] | None = None) -> dict | None:
    execute(cur, query, params)
    return cur.fetchone()


def fetch_all(cur: Any, query: Query, params: dict[str, Any] | None = None) -> list[dict]:
    execute(cur, query, params)
    return cur.fetchall()
