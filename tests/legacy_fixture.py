"""Databases of the legacy, profile-based chat shape, for the migration.

A real installation has the application's own tables and only the three chat tables in the old
shape, so a legacy database is built the same way: the schema first, then the chat tables are
replaced by their legacy form, and the foreign keys other tables (requested_sessions) had on them
are put back.

The shape the migration is specified for (the chat tables below), in two sizes:
- `small`: 37 conversations holding every trap the migration must handle (profile ids that
  overlap across the student/parent/tutor tables, orphan creator/participant/sender, one user in
  a conversation through two profiles, two direct conversations for one pair, half-filled user
  ids). `build_small` returns the expected outcome, computed from the profile map in Python.
- `large`: 100k conversations, 200k participants and 1M messages through generate_series, for
  the timing figure (bench/migration/run.py).

The original Astegni backend's own chat schema (four profile types, user ids already NOT NULL,
reactions and read receipts, naive timestamps) is the second shape: tests/legacy_original.py.

As a script, from the project root: `python -m tests.legacy_fixture --size large DATABASE_URL`
fills an existing empty database.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg2
from argon2 import PasswordHasher

from astegni.core.schema import apply_schema

PASSWORD = "LegacyUser1!"
CHAT_TABLES = ("chat_message_edits", "chat_messages", "conversation_participants", "conversations")

# The chat tables as the profile-based application made them (serial ids, profile identity
# NOT NULL, user ids optional and unchecked, its own index names).
LEGACY_CHAT_DDL = """
CREATE TABLE conversations (
    id                      serial PRIMARY KEY,
    type                    text        NOT NULL DEFAULT 'direct',
    name                    text,
    created_by_profile_id   integer     NOT NULL,
    created_by_profile_type text        NOT NULL,
    last_message_at         timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE conversation_participants (
    id              serial PRIMARY KEY,
    conversation_id integer     NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    profile_id      integer     NOT NULL,
    profile_type    text        NOT NULL,
    user_id         integer,
    role            text        NOT NULL DEFAULT 'member',
    last_read_at    timestamptz,
    is_active       boolean     NOT NULL DEFAULT true,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, profile_id, profile_type)
);
CREATE INDEX idx_conversation_participants_profile
    ON conversation_participants (profile_id, profile_type);
CREATE TABLE chat_messages (
    id                  serial PRIMARY KEY,
    conversation_id     integer     NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_profile_id   integer     NOT NULL,
    sender_profile_type text        NOT NULL,
    sender_user_id      integer,
    message_type        text        NOT NULL DEFAULT 'text',
    content             text,
    media_metadata      jsonb,
    is_deleted          boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_chat_messages_conversation ON chat_messages (conversation_id, created_at);
"""

# Foreign keys of the other tables that point at the chat tables (dropped with them).
_EXTERNAL_FKS = """
SELECT conrelid::regclass::text AS tab, conname, pg_get_constraintdef(oid) AS def
  FROM pg_constraint
 WHERE contype = 'f'
   AND confrelid::regclass::text = ANY (%(tables)s)
   AND NOT conrelid::regclass::text = ANY (%(tables)s)
"""


def create_legacy_schema(url: str, chat_ddl: str = LEGACY_CHAT_DDL) -> None:
    """The whole application schema, with the chat tables in a legacy shape (chat_ddl)."""
    conn = psycopg2.connect(url)
    try:
        apply_schema(conn)
        with conn, conn.cursor() as cur:
            cur.execute(_EXTERNAL_FKS, {"tables": list(CHAT_TABLES)})
            external = cur.fetchall()
            cur.execute("DROP TABLE " + ", ".join(CHAT_TABLES) + " CASCADE")
            cur.execute(chat_ddl)
            for table, name, definition in external:
                # Catalog text (regclass, constraint name, definition), not values: put back as is.
                cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
            # The functions and views on the chat tables went with them: the first start of the
            # application after the migration re-creates them (the repeatable step).
            cur.execute("DELETE FROM schema_repeatables")
    finally:
        conn.close()


# ---------------------------------------------------------------- the small database


@dataclass
class SmallFixture:
    """What the small database holds and what the migration must make of it."""

    users: dict[int, dict]
    # (profile_type, profile_id) -> users.id: the only correct way to resolve a profile.
    profiles: dict[tuple[str, int], int]
    creators: dict[int, int | None] = field(default_factory=dict)  # conversation -> user
    participants: dict[int, int | None] = field(default_factory=dict)  # participant -> user
    senders: dict[int, int | None] = field(default_factory=dict)  # message -> user
    # participant row -> the row it duplicates (same user, same conversation, another profile)
    duplicate_participants: dict[int, int] = field(default_factory=dict)
    # (low user, high user) -> [canonical conversation, the others]
    direct_pairs: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    traps: dict[str, int] = field(default_factory=dict)

    @property
    def orphan_creators(self) -> list[int]:
        return sorted(k for k, v in self.creators.items() if v is None)

    @property
    def orphan_participants(self) -> list[int]:
        return sorted(k for k, v in self.participants.items() if v is None)

    @property
    def orphan_senders(self) -> list[int]:
        return sorted(k for k, v in self.senders.items() if v is None)


# users.id -> name and profiles. Every profile table numbers from 1, so profile id 1 is a
# different person in each table (student 1 = Abebe, parent 1 = Kebede, tutor 1 = Sara).
_USERS = {
    1: ("Abebe", {"student": 1, "parent": 2}),
    2: ("Sara", {"tutor": 1, "student": 2}),
    3: ("Kebede", {"parent": 1}),
    4: ("Hana", {"tutor": 2}),
    5: ("Dawit", {"student": 3}),
    6: ("Meron", {"tutor": 3}),
    7: ("Yonas", {"student": 4}),
    8: ("Liya", {"parent": 3}),
    9: ("Tigist", {"tutor": 4}),
    10: ("Samuel", {"student": 5}),
    11: ("Ruth", {"student": 6, "parent": 4}),
    12: ("Bereket", {"tutor": 5}),
}
_MISSING = {"creator": ("student", 99), "participant": ("tutor", 77), "sender": ("parent", 88)}
BASE_TIME = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class _Builder:
    def __init__(self) -> None:
        self.profiles = {
            (role, pid): uid for uid, (_, roles) in _USERS.items() for role, pid in roles.items()
        }
        self.conversations: list[tuple] = []
        self.participants: list[tuple] = []
        self.messages: list[tuple] = []
        self.fixture = SmallFixture(
            users={uid: {"name": name, "roles": list(roles)} for uid, (name, roles) in _USERS.items()},
            profiles=self.profiles,
        )

    def user_of(self, profile: tuple[str, int]) -> int | None:
        return self.profiles.get(profile)

    def conversation(
        self, creator, members, *, type_="direct", name=None, start, messages=3, senders=None
    ) -> int:
        cid = len(self.conversations) + 1
        times = [start + timedelta(minutes=7 * i) for i in range(messages)]
        self.conversations.append(
            (cid, type_, name, creator[1], creator[0], times[-1] if times else None, start, start)
        )
        self.fixture.creators[cid] = self.user_of(creator)
        for member in members:
            pid = len(self.participants) + 1
            uid = self.user_of(member)
            # Half-filled: an earlier partial tool wrote user_id on the even rows.
            self.participants.append((pid, cid, member[1], member[0], uid if pid % 2 == 0 else None, start))
            self.fixture.participants[pid] = uid
        for i, at in enumerate(times):
            mid = len(self.messages) + 1
            sender = (senders or members)[i % len(senders or members)]
            uid = self.user_of(sender)
            content = f"message {i + 1} in conversation {cid}"
            self.messages.append((mid, cid, sender[1], sender[0], uid if mid % 2 == 0 else None, content, at))
            self.fixture.senders[mid] = uid
        return cid


def small_fixture_data() -> tuple[_Builder, SmallFixture]:
    b = _Builder()
    fx = b.fixture
    requesters = [("student", i) for i in range(1, 7)] + [("parent", i) for i in range(1, 5)]
    tutors = [("tutor", i) for i in range(1, 6)]
    used: dict[tuple[int, int], int] = {}
    # Pairs the traps below use; kept out of the ordinary conversations.
    reserved = {(1, 6), (10, 12), (7, 9)}
    start = BASE_TIME
    # 30 ordinary direct conversations, each between a different pair of users.
    for requester in requesters:
        for tutor in tutors:
            if len(used) == 30:
                break
            a, c = b.user_of(requester), b.user_of(tutor)
            pair = (min(a, c), max(a, c))
            if a == c or pair in used or pair in reserved:
                continue
            start += timedelta(hours=5)
            used[pair] = b.conversation(
                requester, [requester, tutor], start=start, messages=1 + len(used) % 4
            )

    # Two direct conversations for one pair, reached through another profile of the same user:
    # Abebe wrote to Hana as a student (conversation 1..30) and again as a parent. The later one
    # has the latest activity and becomes canonical.
    first = used[(1, 4)]
    second = b.conversation(("parent", 2), [("parent", 2), ("tutor", 2)], start=start + timedelta(days=3))
    fx.direct_pairs[(1, 4)] = [second, first]
    fx.traps["duplicate_direct_later"] = second
    # And one where the older-looking duplicate is less active: the original stays canonical.
    pair = next(p for p in used if p != (1, 4) and 11 not in p)
    original = used[pair]
    members = [m for m in b.participants if m[1] == original]
    again = b.conversation(
        (members[0][3], members[0][2]),
        [(m[3], m[2]) for m in members],
        start=BASE_TIME - timedelta(days=30),
        messages=1,
    )
    fx.direct_pairs[pair] = [original, again]
    fx.traps["duplicate_direct_earlier"] = again

    # One user in one conversation twice: Abebe as student 1 and as parent 2, with Meron.
    twice = b.conversation(
        ("student", 1),
        [("student", 1), ("parent", 2), ("tutor", 3)],
        start=start + timedelta(days=1),
        messages=4,
    )
    rows = [p[0] for p in b.participants if p[1] == twice]
    fx.duplicate_participants[rows[1]] = rows[0]
    fx.direct_pairs[(1, 6)] = [twice]
    fx.traps["user_twice"] = twice

    # Orphan creator: the student profile that opened it no longer exists.
    fx.traps["orphan_creator"] = b.conversation(
        _MISSING["creator"], [("student", 5), ("tutor", 5)], start=start + timedelta(days=2)
    )
    fx.direct_pairs[(10, 12)] = [fx.traps["orphan_creator"]]
    # Orphan participant (and sender): a deleted tutor profile; one resolved user is no pair.
    fx.traps["orphan_participant"] = b.conversation(
        ("student", 4), [("student", 4), _MISSING["participant"]], start=start + timedelta(hours=30)
    )
    # Orphan sender in a group of two users: a group never gets a pair key.
    fx.traps["orphan_sender"] = b.conversation(
        ("tutor", 4),
        [("tutor", 4), ("student", 4)],
        type_="group",
        name="Physics revision",
        start=start + timedelta(hours=40),
        senders=[("tutor", 4), _MISSING["sender"], ("student", 4)],
    )
    # A group of three users.
    fx.traps["group"] = b.conversation(
        ("tutor", 5),
        [("tutor", 5), ("student", 3), ("student", 6)],
        type_="group",
        name="Grade 10 study group",
        start=start + timedelta(hours=50),
    )
    for pair, cid in used.items():
        fx.direct_pairs.setdefault(pair, [cid])
    assert len(b.conversations) == 37, len(b.conversations)
    return b, fx


def build_small(url: str) -> SmallFixture:
    """Fill url (legacy schema) with the 37 trap-laden conversations; returns the expectation."""
    b, fx = small_fixture_data()
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            emails = insert_users(cur, {uid: (name, list(roles)) for uid, (name, roles) in _USERS.items()})
            for uid, email in emails.items():
                fx.users[uid]["email"] = email
            insert_profiles(cur, b.profiles)
            cur.executemany(
                """INSERT INTO conversations (id, type, name, created_by_profile_id,
                       created_by_profile_type, last_message_at, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                b.conversations,
            )
            cur.executemany(
                """INSERT INTO conversation_participants (id, conversation_id, profile_id,
                       profile_type, user_id, joined_at)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                b.participants,
            )
            cur.executemany(
                """INSERT INTO chat_messages (id, conversation_id, sender_profile_id,
                       sender_profile_type, sender_user_id, content, created_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                b.messages,
            )
            _advance_sequences(cur)
    finally:
        conn.close()
    return fx


def insert_users(cur, users: dict[int, tuple[str, list[str]]]) -> dict[int, str]:
    """users.id -> (first name, roles), all with PASSWORD; returns users.id -> email."""
    password_hash = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(PASSWORD)
    emails = {}
    for uid, (name, roles) in users.items():
        emails[uid] = f"{name.lower()}@legacy.example"
        cur.execute(
            """INSERT INTO users (id, email, password_hash, first_name, father_name, roles, active_role)
               VALUES (%(id)s, %(email)s, %(hash)s, %(name)s, 'Legacy', %(roles)s, %(role)s)""",
            {
                "id": uid,
                "email": emails[uid],
                "hash": password_hash,
                "name": name,
                "roles": roles,
                "role": roles[0],
            },
        )
    return emails


def insert_profiles(cur, profiles: dict[tuple[str, int], int]) -> None:
    """(profile_type, profile id) -> users.id, into <profile_type>_profiles."""
    for (kind, pid), uid in profiles.items():
        cur.execute(
            f"INSERT INTO {kind}_profiles (id, user_id) VALUES (%(id)s, %(user)s)",  # kind: ours
            {"id": pid, "user": uid},
        )


def advance_sequences(cur, tables: tuple[str, ...]) -> None:
    """Explicit ids were inserted: move each table's id sequence past them."""
    for table in tables:
        cur.execute(
            "SELECT setval(pg_get_serial_sequence(%(t)s, 'id'), coalesce(max(id), 0) + 1, false) FROM "
            + table,  # table: one of the fixed names of these fixtures
            {"t": table},
        )


def _advance_sequences(cur) -> None:
    advance_sequences(
        cur, ("users", "student_profiles", "parent_profiles", "tutor_profiles", *CHAT_TABLES[1:])
    )


# ---------------------------------------------------------------- the large database

_LARGE_SQL = """
INSERT INTO users (id, email, password_hash, first_name, father_name, roles, active_role)
SELECT g, 'user' || g || '@bench.example', 'x', 'User' || g, 'Bench',
       ARRAY[CASE WHEN g <= %(students)s THEN 'student'
                  WHEN g <= %(students)s + %(tutors)s THEN 'tutor' ELSE 'parent' END],
       CASE WHEN g <= %(students)s THEN 'student'
            WHEN g <= %(students)s + %(tutors)s THEN 'tutor' ELSE 'parent' END
  FROM generate_series(1, %(students)s + %(tutors)s + %(parents)s) g;
-- Every profile table numbers from 1: profile id k is a different user in each table.
INSERT INTO student_profiles (id, user_id) SELECT g, g FROM generate_series(1, %(students)s) g;
INSERT INTO tutor_profiles (id, user_id)
SELECT g, %(students)s + g FROM generate_series(1, %(tutors)s) g;
INSERT INTO parent_profiles (id, user_id)
SELECT g, %(students)s + %(tutors)s + g FROM generate_series(1, %(parents)s) g;

-- Conversation c: a student (a parent for every tenth) with a tutor; no pair of users repeats
-- (the tutor shifts each time the student or parent numbering wraps round).
-- Every 5000th creator profile no longer exists.
CREATE TEMP TABLE legacy_plan ON COMMIT DROP AS
SELECT c,
       CASE WHEN c %% 10 = 0 THEN 'parent' ELSE 'student' END AS requester_type,
       CASE WHEN c %% 10 = 0 THEN (c - 1) %% %(parents)s + 1
            ELSE (c - 1) %% %(students)s + 1 END AS requester_id,
       ((c - 1) + (c - 1) / %(students)s * 13 + (c - 1) / %(parents)s * 7) %% %(tutors)s + 1
           AS tutor_id
  FROM generate_series(1, %(conversations)s) c;

INSERT INTO conversations (id, type, created_by_profile_id, created_by_profile_type,
                           last_message_at, created_at, updated_at)
SELECT c, 'direct', CASE WHEN c %% 5000 = 0 THEN 1000000 ELSE requester_id END, requester_type,
       timestamptz '2025-01-01' + c * interval '1 minute' + interval '1 hour',
       timestamptz '2025-01-01' + c * interval '1 minute',
       timestamptz '2025-01-01' + c * interval '1 minute'
  FROM legacy_plan;

-- Half-filled: an earlier partial tool wrote user_id on every other tutor row.
INSERT INTO conversation_participants (id, conversation_id, profile_id, profile_type, user_id)
SELECT 2 * c - 1, c, requester_id, requester_type, NULL FROM legacy_plan
UNION ALL
SELECT 2 * c, c, tutor_id, 'tutor', CASE WHEN c %% 2 = 0 THEN %(students)s + tutor_id END
  FROM legacy_plan;

-- Messages alternate requester / tutor; every 100000th sender profile no longer exists;
-- half-filled: the tutor's messages in every other conversation already carry the user.
INSERT INTO chat_messages (id, conversation_id, sender_profile_id, sender_profile_type,
                           sender_user_id, content, created_at)
SELECT m, p.c,
       CASE WHEN m %% 100000 = 0 THEN 2000000
            WHEN m %% 2 = 1 THEN p.requester_id ELSE p.tutor_id END,
       CASE WHEN m %% 2 = 1 THEN p.requester_type ELSE 'tutor' END,
       CASE WHEN m %% 2 = 0 AND p.c %% 2 = 0 AND m %% 100000 <> 0 THEN %(students)s + p.tutor_id END,
       'message ' || m,
       timestamptz '2025-01-01' + m * interval '1 second'
  FROM generate_series(1, %(conversations)s * %(per_conversation)s) m
  JOIN legacy_plan p ON p.c = (m - 1) / %(per_conversation)s + 1;
"""


def build_large(url: str, conversations: int = 100_000, per_conversation: int = 10) -> dict[str, int]:
    """Fill url (legacy schema) with the large database; returns its row counts."""
    params = {
        "conversations": conversations,
        "per_conversation": per_conversation,
        "students": max(conversations // 5, 10),
        "tutors": max(conversations // 20, 5),
        "parents": max(conversations // 20, 5),
    }
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(_LARGE_SQL, params)
            _advance_sequences(cur)
        # A settled database, as production would be: statistics and visibility map up to date.
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    return {
        "conversations": conversations,
        "participants": 2 * conversations,
        "messages": conversations * per_conversation,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database_url", help="an existing, empty database")
    parser.add_argument("--size", choices=("small", "large"), default="small")
    parser.add_argument("--conversations", type=int, default=100_000, help="large size only")
    args = parser.parse_args()
    create_legacy_schema(args.database_url)
    if args.size == "small":
        fx = build_small(args.database_url)
        print(json.dumps({"conversations": len(fx.creators), "traps": fx.traps}, indent=2))
    else:
        print(json.dumps(build_large(args.database_url, args.conversations), indent=2))


if __name__ == "__main__":
    main()
