"""migrate_conversations_to_user_based.py on the original Astegni chat schema
(tests/legacy_original.py): advertisers, groups, reactions and receipts, naive timestamps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg2
import pytest

from tests import pg
from tests.legacy_original import SIDE_TABLES, OriginalFixture, build_original
from tests.support.live import app_client
from tests.test_migration import (
    data_snapshot,
    login,
    migrate,
    migrate_with_package,
    query,
    request_session,
    schema_snapshot,
)

ALL_TABLES = ("conversations", "conversation_participants", "chat_messages", *SIDE_TABLES)


@pytest.fixture(scope="module")
def original_template(pg_url: str) -> Iterator[tuple[str, OriginalFixture]]:
    name = pg.new_name("astegni_tmpl")
    url = pg.create_database(pg_url, name)
    fixture = build_original(url)
    yield name, fixture
    pg.drop_database(pg_url, name)


@pytest.fixture
def original(pg_url: str, original_template) -> Iterator[tuple[str, OriginalFixture]]:
    template, fixture = original_template
    with pg.scratch_database(pg_url, template) as url:
        yield url, fixture


def as_utc(value: object) -> object:
    """A timestamp as the instant it names: naive legacy values are UTC wall-clock times."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def rows(url: str, table: str, columns: list[str] | None = None) -> dict[int, tuple]:
    """Every row of table (the given columns, else all), timestamps as instants."""
    cols = ", ".join(columns) if columns else "*"
    return {r[0]: tuple(map(as_utc, r)) for r in query(url, f"SELECT id, {cols} FROM {table}")}


def legacy_columns(url: str, table: str) -> list[str]:
    return [
        c
        for (c,) in query(
            url,
            """SELECT column_name FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = %(t)s ORDER BY ordinal_position""",
            {"t": table},
        )
    ]


def column_types(url: str, tables=ALL_TABLES) -> dict[tuple[str, str], str]:
    found = query(
        url,
        """SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = ANY (%(t)s)
              AND data_type LIKE 'timestamp%%'""",
        {"t": list(tables)},
    )
    return {(t, c): kind for t, c, kind in found}


def test_advertisers_resolved_groups_and_side_tables_kept(original, capsys):
    url, fx = original
    columns = {table: legacy_columns(url, table) for table in ALL_TABLES}
    before = {table: rows(url, table, columns[table]) for table in ALL_TABLES}
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out

    # Every creator resolved through its own profile table, advertisers included.
    assert dict(query(url, "SELECT id, created_by_user_id FROM conversations")) == fx.creators
    assert fx.creators[fx.conversations["advertiser_tutor"]] == 4  # advertiser 1 is Hana
    assert "✓ conversations.created_by_user_id: 3 rows resolved" in out
    gone = fx.missing_creator
    assert (
        f"⚠ conversations.created_by_user_id: 1 rows unresolved (their profile no longer exists), "
        f"left NULL: ids {gone}\n"
    ) in out
    assert "unknown profile type" not in out

    # No row lost, no legacy value changed: timestamps name the same instants, now with a zone.
    for table, legacy in before.items():
        assert rows(url, table, columns[table]) == legacy
    # The group is a group of its four members, without a pair key.
    group = fx.conversations["advertiser_group"]
    assert query(url, "SELECT type, direct_user_low FROM conversations WHERE id = %(c)s", {"c": group}) == [
        ("group", None)
    ]
    members = query(
        url,
        """SELECT array_agg(user_id ORDER BY user_id) FROM conversation_participants
            WHERE conversation_id = %(c)s""",
        {"c": group},
    )
    assert members[0][0] == sorted(fx.members[group])
    pairs = query(
        url, "SELECT id, direct_user_low, direct_user_high FROM conversations WHERE direct_user_low > 0"
    )
    assert {(low, high): cid for cid, low, high in pairs} == fx.direct_pairs

    # Reactions and receipts: untouched (their own naive timestamps too), still on their messages.
    for table in SIDE_TABLES:
        orphaned = query(
            url,
            f"SELECT count(*) FROM {table} s LEFT JOIN chat_messages m ON m.id = s.message_id"
            " WHERE m.id IS NULL",
        )
        assert orphaned == [(0,)]
        assert query(url, f"SELECT count(*) FROM {table}")[0][0] == len(before[table]) > 0
    types = column_types(url)
    assert {k: v for k, v in types.items() if k[0] in SIDE_TABLES} == {
        ("message_reactions", "created_at"): "timestamp without time zone",
        ("message_read_receipts", "read_at"): "timestamp without time zone",
    }
    assert all(v == "timestamp with time zone" for k, v in types.items() if k[0] not in SIDE_TABLES)


def test_unknown_profile_type_is_reported_as_such(original, capsys):
    url, fx = original
    # A type the catalog has no table for: the legacy CHECK allowed it at the time.
    query(url, "ALTER TABLE conversations DROP CONSTRAINT check_creator_profile_type")
    (cid,) = query(
        url,
        """INSERT INTO conversations (type, created_by_profile_id, created_by_profile_type)
           VALUES ('group', 1, 'admin') RETURNING id""",
    )[0]
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out
    assert (
        f"⚠ conversations.created_by_user_id: 1 rows unresolved (unknown profile type 'admin': no "
        f"admin_profiles table), left NULL: ids {cid}\n"
    ) in out
    assert f"(their profile no longer exists), left NULL: ids {fx.missing_creator}\n" in out


def test_dry_run_lists_the_conversions_and_changes_nothing(original, capsys):
    url, _ = original
    tables = (*ALL_TABLES, "chat_message_edits")
    schema, data = schema_snapshot(url, tables), data_snapshot(url)
    code, out = migrate(url, "--dry-run", capsys=capsys)
    assert code == 0, out
    assert schema_snapshot(url, tables) == schema
    assert data_snapshot(url) == data
    assert (
        "  - convert chat_messages.created_at, chat_messages.deleted_at, chat_messages.edited_at, "
        "chat_messages.pinned_at, chat_messages.updated_at to timestamptz, values read as UTC "
        "(catalog change and index rebuilds under an ACCESS EXCLUSIVE lock on chat_messages)\n"
    ) in out
    assert "  - convert conversations.created_at, conversations.last_message_at" in out
    assert "  - fill conversations.created_by_user_id on 3 rows (0 already set)" in out
    assert "  - drop legacy check chat_messages.check_message_type" in out


def test_second_run_changes_nothing(original, capsys):
    url, _ = original
    assert migrate(url, capsys=capsys)[0] == 0
    tables = (*ALL_TABLES, "chat_message_edits")
    schema, data = schema_snapshot(url, tables), data_snapshot(url)
    code, out = migrate(url, capsys=capsys)
    assert code == 0, out
    assert "✓ Nothing to do: the database is already migrated (5 conversations)" in out
    assert schema_snapshot(url, tables) == schema
    assert data_snapshot(url) == data


def test_conversion_gives_up_on_a_held_lock_within_the_lock_timeout(original, capsys):
    url, _ = original
    # The first transaction on conversations (its new columns and the conversion) must wait.
    holder = psycopg2.connect(url)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT count(*) FROM conversations")  # ACCESS SHARE, held open
        code, out = migrate(url, "--lock-timeout-ms", "100", "--lock-retries", "2", capsys=capsys)
    finally:
        holder.close()
    assert code == 1
    assert "✗ Migration failed: could not lock conversations within 100 ms, 2 times" in out
    assert column_types(url)[("conversations", "created_at")] == "timestamp without time zone"


def has_offset(text: str) -> bool:
    return datetime.fromisoformat(text).tzinfo is not None


def test_application_on_the_migrated_database(original, capsys):
    url, fx = original
    package_id = migrate_with_package(url, 1, capsys)
    direct = fx.conversations["student_tutor"]
    with app_client(url) as client:
        abebe, sara = login(client, fx.emails[1]), login(client, fx.emails[2])
        for headers, expected in ((abebe, {direct, fx.conversations["advertiser_group"]}), (sara, None)):
            response = client.get("/api/chat/conversations", params={"limit": 100}, headers=headers)
            assert response.status_code == 200, response.text
            listed = {c["id"]: c for c in response.json()["conversations"]}
            assert direct in listed
            if expected is not None:
                assert set(listed) == expected
            for conversation in listed.values():
                for key in ("created_at", "last_message_at"):
                    assert conversation[key] is None or has_offset(conversation[key]), conversation
            response = client.get(f"/api/chat/messages/{direct}", headers=headers)
            assert response.status_code == 200, response.text
            messages = response.json()["messages"]
            assert len(messages) == 2
            for message in messages:
                assert has_offset(message["created_at"]), message
                shown = datetime.fromisoformat(message["created_at"])
                assert shown == fx.message_times[message["id"]].replace(tzinfo=UTC)

        # A new request between the same pair lands in their legacy conversation.
        response = request_session(client, abebe, tutor_id=1, package_id=package_id)
        assert response.status_code == 200, response.text
        assert response.json()["conversation_id"] == direct
        assert query(url, "SELECT count(*) FROM conversations")[0][0] == 5
        response = client.get(f"/api/chat/messages/{direct}", headers=sara)
        assert response.status_code == 200, response.text
        assert len(response.json()["messages"]) == 3
