"""Schema versioning: numbered migrations applied once each, the repeatable functions and views,
concurrent start-ups, a changed migration refused, and the upgrade of a database made by the
unversioned schema.sql (tests/fixtures/schema_unversioned.sql) to exactly the fresh schema."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
from argon2 import PasswordHasher

from astegni.core.schema import MIGRATIONS_DIR, REPEATABLE_FILES, SchemaError, apply_schema, migrations
from tests import pg
from tests.support.live import app_client

UNVERSIONED_SQL = Path(__file__).resolve().parent / "fixtures" / "schema_unversioned.sql"
PASSWORD = "Unversioned-Pass-1"

# The catalog of the current schema, in an order that does not depend on the order in which
# columns were added (an upgraded table gains its new columns at the end).
CATALOG = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'v')
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relnamespace = current_schema()::regnamespace
           AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
         ORDER BY 1""",
    "functions": """
        SELECT proname, pg_get_function_identity_arguments(oid), pg_get_function_result(oid),
               md5(prosrc)
          FROM pg_proc WHERE pronamespace = current_schema()::regnamespace ORDER BY 1, 2""",
    "views": """
        SELECT viewname, definition FROM pg_views WHERE schemaname = current_schema()
         ORDER BY 1""",
}


def catalog(url: str) -> dict[str, list[tuple]]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        result = {}
        for name, query in CATALOG.items():
            cur.execute(query)
            result[name] = cur.fetchall()
    conn.close()
    return result


def query(url: str, sql: str, params: tuple | None = None) -> list[dict]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.fixture
def empty_db(pg_url: str) -> Iterator[str]:
    with pg.scratch_database(pg_url) as url:
        yield url


def test_a_fresh_database_gets_every_migration_and_a_second_start_changes_nothing(empty_db):
    assert pg.apply_schema_at(empty_db) is True
    applied = query(empty_db, "SELECT version, name, applied_at FROM schema_migrations ORDER BY 1")
    assert [(r["version"], r["name"]) for r in applied] == [(m.version, m.name) for m in migrations()]
    repeatable = query(empty_db, "SELECT name, applied_at FROM schema_repeatables ORDER BY name")
    assert [r["name"] for r in repeatable] == sorted(REPEATABLE_FILES)
    names = {r["proname"] for r in query(empty_db, "SELECT proname FROM pg_proc")}
    assert {"session_request_create", "user_principal", "chat_reachable"} <= names
    assert query(empty_db, "SELECT to_regclass('session_request_details') AS v")[0]["v"]
    assert query(empty_db, "SELECT to_regclass('schema_state') AS t")[0]["t"] is None
    before = catalog(empty_db)

    assert pg.apply_schema_at(empty_db) is False
    assert catalog(empty_db) == before
    assert query(empty_db, "SELECT version, name, applied_at FROM schema_migrations ORDER BY 1") == applied
    assert query(empty_db, "SELECT name, applied_at FROM schema_repeatables ORDER BY name") == repeatable


def test_start_ups_at_once_apply_each_migration_exactly_once(empty_db):
    starts = 6
    barrier = threading.Barrier(starts)
    results: list[object] = []

    def start() -> None:
        conn = psycopg2.connect(empty_db)
        try:
            barrier.wait()
            results.append(apply_schema(conn))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=start) for _ in range(starts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == [False] * (starts - 1) + [True]
    assert len(query(empty_db, "SELECT 1 FROM schema_migrations")) == len(migrations())


def test_a_new_migration_is_applied_once_and_a_changed_applied_one_is_refused(empty_db, tmp_path):
    pg.apply_schema_at(empty_db)
    steps = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, steps)
    (steps / "0900_test_notes.sql").write_text("CREATE TABLE test_notes (id integer PRIMARY KEY);\n")
    assert pg.apply_schema_at(empty_db, migrations_dir=steps) is True
    assert pg.apply_schema_at(empty_db, migrations_dir=steps) is False
    assert query(empty_db, "SELECT name FROM schema_migrations WHERE version = 900") == [
        {"name": "0900_test_notes.sql"}
    ]

    changed = steps / "0002_upgrade_from_unversioned.sql"
    changed.write_text(changed.read_text() + "\nCREATE TABLE test_sneaked_in (id integer);\n")
    before = catalog(empty_db)
    with pytest.raises(SchemaError, match=r"0002_upgrade_from_unversioned\.sql"):
        pg.apply_schema_at(empty_db, migrations_dir=steps)
    assert catalog(empty_db) == before


def test_changed_functions_are_recreated_and_old_signatures_dropped(empty_db):
    pg.apply_schema_at(empty_db)
    before = catalog(empty_db)
    # What an earlier version of the files left: another overload and another result type.
    query(
        empty_db,
        """DROP FUNCTION session_request_expire_due(integer);
           CREATE FUNCTION session_request_expire_due(p_limit integer) RETURNS text
               LANGUAGE sql AS $$ SELECT 'old' $$;
           CREATE FUNCTION user_principal(p_user_id integer) RETURNS integer
               LANGUAGE sql AS $$ SELECT 1 $$;
           UPDATE schema_repeatables SET checksum = 'an earlier file'
            WHERE name = 'session_requests/functions.sql'""",
    )
    assert pg.apply_schema_at(empty_db) is True
    assert catalog(empty_db) == before


# ---------------------------------------------------------------- the unversioned database


def _fill_unversioned(url: str) -> dict[str, int]:
    """Users, a tutor's package, a pending request from a child and a second one for the same
    child from the parent (allowed before the learner key), with their conversations and cards,
    and a login_failures row: what the previous version's database holds."""
    password_hash = PasswordHasher(time_cost=1, memory_cost=64).hash(PASSWORD)
    ids: dict[str, int] = {}

    def user(key: str, role: str) -> None:
        [row] = query(
            url,
            """INSERT INTO users (email, password_hash, first_name, father_name, roles, active_role)
               VALUES (%s, %s, %s, 'Old', ARRAY[%s], %s) RETURNING id""",
            (f"{key}@unversioned.test", password_hash, key.title(), role, role),
        )
        ids[key] = row["id"]
        [profile] = query(
            url, f"INSERT INTO {role}_profiles (user_id) VALUES (%s) RETURNING id", (row["id"],)
        )
        ids[f"{key}_profile"] = profile["id"]

    user("tutor", "tutor")
    user("child", "student")
    user("parent", "parent")
    query(url, "INSERT INTO parent_children VALUES (%s, %s)", (ids["parent_profile"], ids["child_profile"]))
    [package] = query(
        url,
        "INSERT INTO tutor_packages (tutor_id, name, hourly_rate) VALUES (%s, 'Algebra', 300) RETURNING id",
        (ids["tutor_profile"],),
    )
    ids["package"] = package["id"]
    for requester, kind, rate in (("child", "student", 250), ("parent", "parent", 275)):
        low, high = sorted((ids[requester], ids["tutor"]))
        [conversation] = query(
            url,
            """INSERT INTO conversations (created_by_user_id, direct_user_low, direct_user_high)
               VALUES (%s, %s, %s) RETURNING id""",
            (ids[requester], low, high),
        )
        query(
            url,
            "INSERT INTO conversation_participants (conversation_id, user_id) VALUES (%s, %s), (%s, %s)",
            (conversation["id"], ids[requester], conversation["id"], ids["tutor"]),
        )
        [card] = query(
            url,
            """INSERT INTO chat_messages (conversation_id, sender_user_id, message_type, content,
                   media_metadata)
               VALUES (%s, %s, 'session_request', 'Please', jsonb_build_object('hourly_rate', %s))
               RETURNING id""",
            (conversation["id"], ids[requester], rate),
        )
        query(
            url,
            "INSERT INTO chat_messages (conversation_id, sender_user_id, content) VALUES (%s, %s, 'Hello')",
            (conversation["id"], ids["tutor"]),
        )
        [request] = query(
            url,
            """INSERT INTO requested_sessions (tutor_id, package_id, requester_id, requester_type,
                   requested_to_id, schedule_type, timezone, expires_at, conversation_id, message_id)
               VALUES (%s, %s, %s, %s, %s, 'recurring', 'Africa/Addis_Ababa',
                       now() + interval '7 days', %s, %s)
               RETURNING id""",
            (
                ids["tutor_profile"],
                ids["package"],
                ids[requester],
                kind,
                ids["child_profile"],
                conversation["id"],
                card["id"],
            ),
        )
        ids[f"{requester}_request"] = request["id"]
        ids[f"{requester}_conversation"] = conversation["id"]
    query(url, "INSERT INTO login_failures VALUES ('child@unversioned.test', 2, now())")
    return ids


@pytest.fixture
def unversioned_db(pg_url: str) -> Iterator[str]:
    """A database as the previous version's start-up made it: its schema.sql in one transaction,
    and its checksum in schema_state."""
    with pg.scratch_database(pg_url) as url:
        query(url, UNVERSIONED_SQL.read_text())
        query(url, "INSERT INTO schema_state (checksum) VALUES ('the previous version')")
        yield url


def test_an_unversioned_database_upgrades_to_the_fresh_schema_and_keeps_its_data(
    unversioned_db, pg_url, template_db
):
    ids = _fill_unversioned(unversioned_db)
    counts = "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM chat_messages) AS messages"
    [before] = query(unversioned_db, counts)

    assert pg.apply_schema_at(unversioned_db) is True
    assert pg.apply_schema_at(unversioned_db) is False
    assert catalog(unversioned_db) == catalog(pg.with_database(pg_url, template_db))
    applied = query(unversioned_db, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [r["version"] for r in applied] == [m.version for m in migrations()]

    # The data survived; the later of the two pending requests for one child was cancelled,
    # with its history row and a system message in its conversation.
    [after] = query(unversioned_db, counts)
    assert after == {"users": before["users"], "messages": before["messages"] + 1}
    requests = query(unversioned_db, "SELECT id, status, package_price FROM requested_sessions ORDER BY id")
    assert requests == [
        {"id": ids["child_request"], "status": "pending", "package_price": 250},
        {"id": ids["parent_request"], "status": "cancelled", "package_price": 275},
    ]
    [event] = query(unversioned_db, "SELECT request_id, to_status, reason FROM session_request_events")
    assert (event["request_id"], event["to_status"]) == (ids["parent_request"], "cancelled")
    [notice] = query(
        unversioned_db,
        "SELECT conversation_id, content FROM chat_messages WHERE message_type = 'system'",
    )
    assert notice == {
        "conversation_id": ids["parent_conversation"],
        "content": "Session request for Algebra was cancelled.",
    }

    # And the application works on it: the child logs in, sees the request, and sends another.
    with app_client(unversioned_db) as client:
        login = client.post("/api/login", json={"email": "child@unversioned.test", "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        mine = client.get("/api/session-requests/my-requests", headers=headers)
        assert mine.status_code == 200, mine.text
        [package] = query(
            unversioned_db,
            "INSERT INTO tutor_packages (tutor_id, name, hourly_rate) VALUES (%s, 'Physics', 320)"
            " RETURNING id",
            (ids["tutor_profile"],),
        )
        body = {"tutor_id": ids["tutor_profile"], "package_id": package["id"], "days": ["Monday"]}
        created = client.post("/api/session-requests", json=body, headers=headers)
        assert created.status_code == 200, created.text
        assert created.json()["conversation_id"] == ids["child_conversation"]
