"""migrate_conversations_to_user_based.py on the small legacy database (tests/legacy_fixture.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from fastapi.testclient import TestClient

import migrate_conversations_to_user_based as script
from tests import legacy_fixture, pg
from tests.support.live import app_client
from tests.support.polling import eventually

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT_DIR / "migrate_conversations_to_user_based.py"

# The legacy columns and their values, which the migration must leave as they are.
LEGACY_COLUMNS = {
    "conversations": "id, type, name, created_by_profile_id, created_by_profile_type, "
    "last_message_at, created_at, updated_at",
    "conversation_participants": "id, conversation_id, profile_id, profile_type, role, last_read_at, "
    "is_active, joined_at",
    "chat_messages": "id, conversation_id, sender_profile_id, sender_profile_type, message_type, "
    "content, media_metadata, is_deleted, created_at, updated_at",
}
USER_COLUMNS = {
    "conversations": None,
    "conversation_participants": "user_id",
    "chat_messages": "sender_user_id",
}


@pytest.fixture(scope="module")
def legacy_template(pg_url: str) -> Iterator[tuple[str, legacy_fixture.SmallFixture]]:
    """The small legacy database, built once and cloned by every test."""
    name = pg.new_name("astegni_tmpl")
    url = pg.create_database(pg_url, name)
    legacy_fixture.create_legacy_schema(url)
    fixture = legacy_fixture.build_small(url)
    yield name, fixture
    pg.drop_database(pg_url, name)


@pytest.fixture
def legacy(pg_url: str, legacy_template) -> Iterator[tuple[str, legacy_fixture.SmallFixture]]:
    template, fixture = legacy_template
    with pg.scratch_database(pg_url, template) as url:
        yield url, fixture


def migrate(url: str, *args: str, capsys) -> tuple[int, str]:
    code = script.main(["--database-url", url, *args])
    return code, capsys.readouterr().out


def query(url: str, sql: str, params: dict | None = None) -> list[tuple]:
    conn = psycopg2.connect(url)
    conn.autocommit = True  # never leave a transaction open that the migration would wait for
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def column_map(url: str, table: str, column: str) -> dict[int, int | None]:
    return dict(query(url, f"SELECT id, {column} FROM {table}"))


def legacy_checksums(url: str) -> dict[str, tuple]:
    return {
        table: query(
            url, f"SELECT count(*), md5(string_agg(row({cols})::text, '|' ORDER BY id)) FROM {table}"
        )[0]
        for table, cols in LEGACY_COLUMNS.items()
    }


def schema_snapshot(url: str, tables=legacy_fixture.CHAT_TABLES) -> dict[str, list]:
    """The chat tables' columns, constraints and indexes, as the catalog states them."""
    tables = list(tables)
    return {
        "columns": query(
            url,
            """SELECT table_name, column_name, data_type, is_nullable, column_default
                 FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = ANY (%(t)s)
                ORDER BY 1, 2""",
            {"t": tables},
        ),
        "constraints": query(
            url,
            """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated
                 FROM pg_constraint WHERE conrelid::regclass::text = ANY (%(t)s) ORDER BY 1, 2""",
            {"t": tables},
        ),
        "indexes": query(
            url,
            """SELECT tablename, indexname, indexdef FROM pg_indexes
                WHERE schemaname = current_schema() AND tablename = ANY (%(t)s) ORDER BY 1, 2""",
            {"t": tables},
        ),
    }


def data_snapshot(url: str) -> dict[str, str]:
    return {
        table: query(url, f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) FROM {table} t")[
            0
        ][0]
        for table in legacy_fixture.CHAT_TABLES[1:]
    }


# ---------------------------------------------------------------- the outcome


def test_every_row_resolves_through_its_own_profile_table(legacy, capsys):
    url, fx = legacy
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out

    assert column_map(url, "conversations", "created_by_user_id") == fx.creators
    assert column_map(url, "conversation_participants", "user_id") == fx.participants
    assert column_map(url, "chat_messages", "sender_user_id") == fx.senders
    # The overlapping ids, spelled out: profile id 1 is three different people.
    by_profile = dict(
        query(
            url, "SELECT DISTINCT profile_type, user_id FROM conversation_participants WHERE profile_id = 1"
        )
    )
    assert by_profile == {"student": 1, "parent": 3, "tutor": 2}

    assert "✓ 37 existing conversations migrated" in out
    unresolved = "rows unresolved (their profile no longer exists), left NULL: ids"
    assert f"⚠ conversations.created_by_user_id: 1 {unresolved} {fx.orphan_creators[0]}\n" in out
    assert f"⚠ conversation_participants.user_id: 1 {unresolved} {fx.orphan_participants[0]}\n" in out
    orphans = ", ".join(map(str, fx.orphan_senders))
    assert f"⚠ chat_messages.sender_user_id: 2 {unresolved} {orphans}\n" in out
    assert "✓ Profile columns made nullable: conversations.created_by_profile_id" in out


def test_legacy_values_are_kept_and_columns_made_nullable(legacy, capsys):
    url, _ = legacy
    before = legacy_checksums(url)
    prefilled = {
        table: {k: v for k, v in column_map(url, table, col).items() if v is not None}
        for table, col in USER_COLUMNS.items()
        if col
    }
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out

    assert legacy_checksums(url) == before
    for table, values in prefilled.items():
        after = column_map(url, table, USER_COLUMNS[table])
        assert {k: after[k] for k in values} == values
    nullable = query(
        url,
        """SELECT table_name || '.' || column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND is_nullable = 'YES'
              AND column_name IN ('created_by_profile_id', 'created_by_profile_type', 'profile_id',
                                  'profile_type', 'sender_profile_id', 'sender_profile_type')""",
    )
    assert len(nullable) == 6


def test_duplicate_participants_and_duplicate_direct_conversations(legacy, capsys):
    url, fx = legacy
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out

    marked = dict(
        query(
            url, "SELECT id, duplicate_of_id FROM conversation_participants WHERE duplicate_of_id IS NOT NULL"
        )
    )
    assert marked == fx.duplicate_participants
    (twice,) = query(
        url,
        """SELECT array_agg(user_id ORDER BY user_id) FROM conversation_participants
            WHERE conversation_id = %(c)s AND duplicate_of_id IS NULL""",
        {"c": fx.traps["user_twice"]},
    )
    assert twice[0] == [1, 6]

    keys = {
        cid: (low, high)
        for cid, low, high in query(url, "SELECT id, direct_user_low, direct_user_high FROM conversations")
    }
    expected = {cid: None for cid in keys}
    for pair, (canonical, *_others) in fx.direct_pairs.items():
        expected[canonical] = pair
    assert {cid: (v if v != (None, None) else None) for cid, v in keys.items()} == expected
    for (low, high), ids in fx.direct_pairs.items():
        if len(ids) > 1:
            assert (
                f"✓ users {low} and {high} have 2 direct conversations: {ids[0]} is canonical "
                f"(latest activity), {ids[1]} kept without the pair key"
            ) in out
    assert f"participant row {next(iter(fx.duplicate_participants))} marked duplicate" in out


def test_schema_matches_schema_sql_and_app_startup_leaves_it(legacy, capsys, pg_url, template_db):
    url, _ = legacy
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out
    assert pg.apply_schema_at(url)  # the first start of the application: functions and views back
    migrated, fresh = schema_snapshot(url), schema_snapshot(pg.with_database(pg_url, template_db))

    def without_ids(columns):  # legacy ids are serial, the schema's identity: both work
        return [c for c in columns if c[1] != "id"]

    assert without_ids(migrated["columns"]) == without_ids(fresh["columns"])
    # Everything the schema declares is there, the same; legacy extras (its own indexes) may stay.
    assert set(fresh["constraints"]) <= set(migrated["constraints"])
    assert set(fresh["indexes"]) <= set(migrated["indexes"])


# ---------------------------------------------------------------- safety


def test_dry_run_changes_nothing(legacy, capsys):
    url, fx = legacy
    schema, data = schema_snapshot(url), data_snapshot(url)
    code, out = migrate(url, "--dry-run", capsys=capsys)
    assert code == 0, out
    assert schema_snapshot(url) == schema
    assert data_snapshot(url) == data
    assert "Dry run: nothing was changed. For 37 conversations it would:" in out
    assert "  - add column conversations.created_by_user_id" in out
    assert "  - fill chat_messages.sender_user_id on 46 rows (45 already set)" in out
    assert "would be marked duplicate" in out
    assert f"ids {fx.orphan_participants[0]}" in out


def test_second_run_is_a_no_op(legacy, capsys):
    url, _ = legacy
    assert migrate(url, capsys=capsys)[0] == 0
    schema, data = schema_snapshot(url), data_snapshot(url)
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out
    assert "✓ Nothing to do: the database is already migrated (37 conversations)" in out
    assert schema_snapshot(url) == schema
    assert data_snapshot(url) == data
    # And a dry run on the migrated database plans nothing.
    code, out = migrate(url, "--dry-run", capsys=capsys)
    assert "  - add " not in out and "  - build " not in out
    assert "fill chat_messages.sender_user_id on 0 rows" in out


def test_unreachable_database_fails_with_a_message(capsys):
    code, out = migrate("postgresql://nobody@127.0.0.1:1/none", capsys=capsys)
    assert code == 1
    assert out.splitlines()[-1].startswith("✗ Migration failed: cannot connect to the database")


# ---------------------------------------------------------------- locks and interruptions


def hold(url: str, sql: str):
    """A connection that holds whatever sql locks, in an open transaction, until closed."""
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute(sql)
    return conn


def run_script(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--database-url", url, *args],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_held_lock_fails_fast_and_changes_nothing(legacy, capsys):
    url, _ = legacy
    schema = schema_snapshot(url)
    holder = hold(url, "SELECT count(*) FROM conversations")  # ACCESS SHARE, idle in transaction
    try:
        started = time.monotonic()
        code, out = migrate(url, "--lock-timeout-ms", "100", "--lock-retries", "2", capsys=capsys)
        elapsed = time.monotonic() - started
        holder_pid = holder.info.backend_pid
    finally:
        holder.close()
    assert code == 1
    assert elapsed < 5
    assert "… conversations is locked by pid" in out
    assert "✗ Migration failed: could not lock conversations within 100 ms, 2 times" in out
    assert f"pid {holder_pid}" in out
    assert schema_snapshot(url) == schema


def test_held_lock_waits_briefly_then_succeeds(legacy):
    url, fx = legacy
    holder = hold(url, "LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE")
    try:
        process = run_script(url, "--lock-timeout-ms", "200", "--lock-retries", "30")
        deadline, said = time.monotonic() + 30, ""
        while time.monotonic() < deadline and "chat_messages is locked by pid" not in said:
            said += process.stdout.readline()  # the script flushes each line
        assert process.poll() is None, said  # waiting, not failed
    finally:
        holder.close()  # the long transaction ends
    out, _ = process.communicate(timeout=60)
    out = said + out
    assert process.returncode == 0, out
    assert "chat_messages is locked by pid" in out
    assert column_map(url, "chat_messages", "sender_user_id") == fx.senders


# Test scaffolding: a trigger that makes the back-fill of one message row stall or fail.
STALL_TRIGGER = """
CREATE FUNCTION pg_temp_test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = %(row)s THEN
        IF %(fail)s THEN RAISE EXCEPTION 'forced failure at message %%', NEW.id; END IF;
        PERFORM pg_sleep(60);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_stall BEFORE UPDATE ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION pg_temp_test_stall();
"""
DROP_STALL = "DROP TRIGGER test_stall ON chat_messages; DROP FUNCTION pg_temp_test_stall()"
STUCK = 61  # a message in the middle, NULL sender_user_id


def assert_stopped_mid_backfill(url: str, fx) -> None:
    senders = column_map(url, "chat_messages", "sender_user_id")
    filled = [m for m, user in senders.items() if user is not None and m % 2 == 1]  # odd: were NULL
    assert filled, "no batch was committed before the stop"
    assert all(senders[m] == fx.senders[m] for m in filled)  # what was committed is right
    assert senders[STUCK] is None
    assert any(senders[m] is None and fx.senders[m] is not None for m in senders)  # the rest: not yet


def assert_fully_migrated(url: str, fx) -> None:
    assert column_map(url, "chat_messages", "sender_user_id") == fx.senders
    assert column_map(url, "conversation_participants", "user_id") == fx.participants
    paired = query(url, "SELECT count(*) FROM conversations WHERE direct_user_low IS NOT NULL")
    assert paired[0][0] == len(fx.direct_pairs)


def test_killed_run_is_completed_by_the_next(legacy, capsys):
    url, fx = legacy
    query(url, STALL_TRIGGER, {"row": STUCK, "fail": False})
    process = run_script(url, "--batch-size", "5")
    try:
        eventually(
            lambda: query(
                url,
                """SELECT pid FROM pg_stat_activity WHERE application_name = 'astegni-migration'
                     AND datname = current_database() AND wait_event = 'PgSleep'""",
            ),
            20,
            interval=0.02,
            what="the migration to reach the stalled row",
        )
        process.send_signal(signal.SIGKILL)  # killed half-way through the messages
        process.communicate(timeout=10)
    finally:
        process.kill()
        # Its server session would sleep on; end it (it belongs to the process killed above).
        query(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "application_name = 'astegni-migration' AND datname = current_database()",
        )
    query(url, DROP_STALL)
    assert_stopped_mid_backfill(url, fx)

    code, out = migrate(url, capsys=capsys)
    assert code == 0, out
    assert "✓ 37 existing conversations migrated" in out
    assert_fully_migrated(url, fx)
    assert "✓ Nothing to do" in migrate(url, capsys=capsys)[1]


def test_failed_run_exits_non_zero_and_the_next_completes_it(legacy, capsys):
    url, fx = legacy
    query(url, STALL_TRIGGER, {"row": STUCK, "fail": True})
    code, out = migrate(url, "--batch-size", "5", capsys=capsys)
    assert code == 1
    assert "✗ Migration failed: forced failure at message 61" in out
    assert "finished steps are kept. Run again to complete." in out
    query(url, DROP_STALL)
    assert_stopped_mid_backfill(url, fx)

    code, out = migrate(url, capsys=capsys)
    assert code == 0, out
    assert_fully_migrated(url, fx)


def test_larger_database_in_many_batches(pg_url, capsys):
    """The large generator at a small scale: every row checked against its profile by SQL."""
    with pg.scratch_database(pg_url) as url:
        legacy_fixture.create_legacy_schema(url)
        counts = legacy_fixture.build_large(url, conversations=2000, per_conversation=5)
        code, out = migrate(url, "--batch-size", "700", capsys=capsys)
        assert code == 0, out
        assert "✓ 2000 existing conversations migrated" in out
        wrong = query(
            url,
            """WITH profiles AS (
                   SELECT 'student' AS type, id, user_id FROM student_profiles
                   UNION ALL SELECT 'parent', id, user_id FROM parent_profiles
                   UNION ALL SELECT 'tutor', id, user_id FROM tutor_profiles)
               SELECT 'message', m.id FROM chat_messages m
                 LEFT JOIN profiles p ON p.type = m.sender_profile_type AND p.id = m.sender_profile_id
                WHERE m.sender_user_id IS DISTINCT FROM p.user_id
               UNION ALL
               SELECT 'participant', c.id FROM conversation_participants c
                 LEFT JOIN profiles p ON p.type = c.profile_type AND p.id = c.profile_id
                WHERE c.user_id IS DISTINCT FROM p.user_id""",
        )
        assert wrong == []
        assert query(url, "SELECT count(*) FROM chat_messages")[0][0] == counts["messages"]
        assert (
            query(url, "SELECT count(*) FROM conversations WHERE direct_user_low IS NOT NULL")[0][0] == 2000
        )


# ---------------------------------------------------------------- the application on it


def login(client: TestClient, email: str) -> dict[str, str]:
    response = client.post("/api/login", json={"email": email, "password": legacy_fixture.PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def migrate_with_package(url: str, tutor_id: int, capsys) -> int:
    """Migrate url, then give tutor_profiles.id tutor_id a package; returns its id."""
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out
    return query(
        url,
        """INSERT INTO tutor_packages (tutor_id, name, hourly_rate)
           VALUES (%(t)s, 'Algebra', 300) RETURNING id""",
        {"t": tutor_id},
    )[0][0]


def request_session(client: TestClient, headers: dict[str, str], tutor_id: int, package_id: int):
    return client.post(
        "/api/session-requests",
        json={
            "tutor_id": tutor_id,
            "package_id": package_id,
            "schedule_type": "recurring",
            "days": ["Monday"],
            "start_time": "16:00",
            "end_time": "17:00",
        },
        headers=headers,
    )


def test_application_works_on_the_migrated_database(legacy, capsys):
    url, fx = legacy
    package_id = migrate_with_package(url, 2, capsys)
    with app_client(url) as client:
        abebe = login(client, fx.users[1]["email"])
        hana = login(client, fx.users[4]["email"])
        canonical, other = fx.direct_pairs[(1, 4)]
        # Both legacy conversations of the pair show for both users.
        for headers in (abebe, hana):
            response = client.get("/api/chat/conversations", params={"limit": 100}, headers=headers)
            assert response.status_code == 200, response.text
            ids = {c["id"] for c in response.json()["conversations"]}
            assert {canonical, other} <= ids
        response = client.get(f"/api/chat/messages/{other}", headers=hana)
        assert response.status_code == 200, response.text
        assert len(response.json()["messages"]) == sum(
            1 for m in query(url, "SELECT id FROM chat_messages WHERE conversation_id = %(c)s", {"c": other})
        )

        # A new request between the same pair lands in their canonical conversation.
        response = request_session(client, abebe, tutor_id=2, package_id=package_id)
        assert response.status_code == 200, response.text
        assert response.json()["conversation_id"] == canonical
        members = query(
            url,
            """SELECT user_id FROM conversation_participants
                WHERE conversation_id = %(c)s AND duplicate_of_id IS NULL ORDER BY user_id""",
            {"c": canonical},
        )
        assert members == [(1,), (4,)]
        assert query(url, "SELECT count(*) FROM conversations")[0][0] == 37

        # The user who was in a conversation through two profiles: still one member there.
        response = client.get(f"/api/chat/conversations/{fx.traps['user_twice']}", headers=abebe)
        assert response.status_code == 200, response.text
        member_ids = sorted(p.get("user_id", p.get("id")) for p in response.json()["participants"])
        assert member_ids == [1, 6]
