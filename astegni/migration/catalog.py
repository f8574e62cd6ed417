"""What the database holds right now: read before each phase, so every step knows if it is due."""

from __future__ import annotations

from dataclasses import dataclass

CHAT_TABLES = ("conversations", "conversation_participants", "chat_messages", "chat_message_edits")

_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS column_name, a.attnotnull AS not_null,
       format_type(a.atttypid, NULL) AS data_type
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = current_schema()::regnamespace
   AND c.relname = ANY (%(tables)s) AND a.attnum > 0 AND NOT a.attisdropped
"""
_CONSTRAINTS = """
SELECT c.relname AS table_name, k.conname, k.contype, k.convalidated,
       (SELECT array_agg(a.attname) FROM pg_attribute a
         WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)) AS columns
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY (%(tables)s)
"""
# Every table named <type>_profiles with the id and user_id a profile needs: the profile types
# that resolve (student, parent and tutor always; advertiser and others where an installation
# has them).
_PROFILE_TABLES = r"""
SELECT left(c.relname, -length('_profiles'))
  FROM pg_class c
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname LIKE '%\_profiles'
   AND (SELECT count(*) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attname IN ('id', 'user_id') AND NOT a.attisdropped) = 2
 ORDER BY 1
"""
NAIVE_TIMESTAMP = "timestamp without time zone"
_INDEXES = """
SELECT i.relname AS index_name, x.indisvalid
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
 WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY (%(tables)s)
"""


@dataclass(frozen=True)
class Catalog:
    columns: dict[tuple[str, str], bool]  # (table, column) -> NOT NULL
    types: dict[tuple[str, str], str]  # (table, column) -> type name
    constraints: dict[tuple[str, str], bool]  # (table, name) -> validated
    fk_columns: frozenset[tuple[str, str]]  # (table, column) with a one-column foreign key
    indexes: dict[str, bool]  # name -> valid (a failed CREATE INDEX CONCURRENTLY leaves it invalid)
    profile_types: tuple[str, ...]  # the types whose <type>_profiles table exists
    checks: dict[tuple[str, str], tuple[str, ...]]  # (table, CHECK constraint) -> its columns

    @property
    def tables(self) -> set[str]:
        return {table for table, _ in self.columns}

    def has_column(self, table: str, column: str) -> bool:
        return (table, column) in self.columns

    def not_null(self, table: str, column: str) -> bool:
        return self.columns.get((table, column), False)

    def naive_timestamps(self, table: str) -> list[str]:
        """The table's `timestamp without time zone` columns, in name order."""
        return sorted(c for (t, c), kind in self.types.items() if t == table and kind == NAIVE_TIMESTAMP)


def read_catalog(cur) -> Catalog:
    params = {"tables": list(CHAT_TABLES)}
    cur.execute(_COLUMNS, params)
    rows = cur.fetchall()
    columns = {(t, c): not_null for t, c, not_null, _ in rows}
    types = {(t, c): data_type for t, c, _, data_type in rows}
    cur.execute(_CONSTRAINTS, params)
    constraints, fk_columns, checks = {}, set(), {}
    for table, name, kind, validated, cols in cur.fetchall():
        constraints[(table, name)] = validated
        if kind == "f" and cols and len(cols) == 1:
            fk_columns.add((table, cols[0]))
        if kind == "c":
            checks[(table, name)] = tuple(cols or ())
    cur.execute(_INDEXES, params)
    indexes = dict(cur.fetchall())
    cur.execute(_PROFILE_TABLES)
    profile_types = tuple(row[0] for row in cur.fetchall())
    return Catalog(columns, types, constraints, frozenset(fk_columns), indexes, profile_types, checks)


def missing_legacy_tables(cur) -> list[str]:
    """The tables the migration needs and cannot create; empty when the database has them all."""
    needed = ["users", "student_profiles", "parent_profiles", "tutor_profiles", *CHAT_TABLES[:3]]
    cur.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind IN ('r', 'p') AND relname = ANY (%(names)s)",
        {"names": needed},
    )
    present = {row[0] for row in cur.fetchall()}
    return [name for name in needed if name not in present]
