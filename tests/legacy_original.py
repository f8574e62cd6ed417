"""A database of the original Astegni backend's own chat schema, for the migration.

What sets it apart from the shape of tests/legacy_fixture.py (and what the migration must cope
with): four profile types, `advertiser` among them (advertiser_profiles); participants and
senders that already carry a NOT NULL user_id; a nullable creator; group chats with an admin;
message_reactions and message_read_receipts referencing chat_messages(id); CHECK constraints on
the profile types, roles and message types; every timestamp a `TIMESTAMP` without time zone.

`build_original` fills a database (application schema, these chat tables) and returns what the
migration must make of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg2

from tests.legacy_fixture import (
    PASSWORD,
    advance_sequences,
    create_legacy_schema,
    insert_profiles,
    insert_users,
)

PROFILE_TYPES = "('tutor', 'student', 'parent', 'advertiser')"

ORIGINAL_CHAT_DDL = f"""
CREATE TABLE advertiser_profiles (
    id         serial PRIMARY KEY,
    user_id    integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    company    varchar(255),
    created_at timestamp DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE conversations (
    id                      serial PRIMARY KEY,
    type                    varchar(20) NOT NULL DEFAULT 'direct',
    name                    varchar(255),
    description             text,
    avatar_url              varchar(500),
    created_by_profile_id   integer,
    created_by_profile_type varchar(50),
    is_archived             boolean DEFAULT false,
    is_muted                boolean DEFAULT false,
    created_at              timestamp DEFAULT CURRENT_TIMESTAMP,
    updated_at              timestamp DEFAULT CURRENT_TIMESTAMP,
    last_message_at         timestamp,
    CONSTRAINT check_conversation_type CHECK (type IN ('direct', 'group')),
    CONSTRAINT check_creator_profile_type
        CHECK (created_by_profile_type IS NULL OR created_by_profile_type IN {PROFILE_TYPES})
);
CREATE INDEX idx_conversations_last_message ON conversations (last_message_at DESC);
CREATE TABLE conversation_participants (
    id                   serial PRIMARY KEY,
    conversation_id      integer NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    profile_id           integer NOT NULL,
    profile_type         varchar(50) NOT NULL,
    user_id              integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 varchar(20) DEFAULT 'member',
    is_muted             boolean DEFAULT false,
    is_pinned            boolean DEFAULT false,
    last_read_at         timestamp,
    last_read_message_id integer,
    is_active            boolean DEFAULT true,
    joined_at            timestamp DEFAULT CURRENT_TIMESTAMP,
    left_at              timestamp,
    created_at           timestamp DEFAULT CURRENT_TIMESTAMP,
    updated_at           timestamp DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_participant_profile_type CHECK (profile_type IN {PROFILE_TYPES}),
    CONSTRAINT check_participant_role CHECK (role IN ('admin', 'member')),
    CONSTRAINT unique_participant UNIQUE (conversation_id, profile_id, profile_type)
);
CREATE INDEX idx_participants_user ON conversation_participants (user_id);
CREATE TABLE chat_messages (
    id                     serial PRIMARY KEY,
    conversation_id        integer NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_profile_id      integer NOT NULL,
    sender_profile_type    varchar(50) NOT NULL,
    sender_user_id         integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_type           varchar(20) NOT NULL DEFAULT 'text',
    content                text,
    media_url              varchar(500),
    media_metadata         jsonb,
    reply_to_id            integer REFERENCES chat_messages (id) ON DELETE SET NULL,
    forwarded_from_id      integer REFERENCES chat_messages (id) ON DELETE SET NULL,
    is_edited              boolean DEFAULT false,
    edited_at              timestamp,
    original_content       text,
    is_deleted             boolean DEFAULT false,
    deleted_at             timestamp,
    deleted_for_everyone   boolean DEFAULT false,
    is_pinned              boolean DEFAULT false,
    pinned_at              timestamp,
    pinned_by_profile_id   integer,
    pinned_by_profile_type varchar(50),
    created_at             timestamp DEFAULT CURRENT_TIMESTAMP,
    updated_at             timestamp DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_message_type CHECK (
        message_type IN ('text', 'image', 'audio', 'video', 'file', 'system', 'location', 'gif')),
    CONSTRAINT check_sender_profile_type
        CHECK (sender_profile_type IN ('tutor', 'student', 'parent', 'advertiser', 'system'))
);
CREATE INDEX idx_messages_conversation_created ON chat_messages (conversation_id, created_at DESC);
CREATE TABLE message_reactions (
    id           serial PRIMARY KEY,
    message_id   integer NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    profile_id   integer NOT NULL,
    profile_type varchar(50) NOT NULL,
    user_id      integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reaction     varchar(50) NOT NULL,
    created_at   timestamp DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT unique_reaction UNIQUE (message_id, profile_id, profile_type, reaction)
);
CREATE TABLE message_read_receipts (
    id           serial PRIMARY KEY,
    message_id   integer NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    profile_id   integer NOT NULL,
    profile_type varchar(50) NOT NULL,
    user_id      integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at      timestamp DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT unique_read_receipt UNIQUE (message_id, profile_id, profile_type)
);
"""
SIDE_TABLES = ("message_reactions", "message_read_receipts")

# users.id -> (name, application roles, profiles). Profile ids overlap across the four tables:
# advertiser 1 is Hana, student 1 is Abebe, tutor 1 is Sara.
USERS = {
    1: ("Abebe", ["student"], {"student": 1}),
    2: ("Sara", ["tutor"], {"tutor": 1}),
    3: ("Kebede", ["parent"], {"parent": 1}),
    4: ("Hana", ["student"], {"student": 2, "advertiser": 1}),
    5: ("Dawit", ["tutor"], {"tutor": 2, "advertiser": 2}),
    6: ("Meron", ["student"], {"student": 3}),
}
# A moment with microseconds and no zone, as the original backend stored them (UTC wall time).
BASE_TIME = datetime(2026, 11, 29, 21, 27, 19, 410529)


@dataclass
class OriginalFixture:
    emails: dict[int, str]
    creators: dict[int, int | None] = field(default_factory=dict)  # conversation -> user
    members: dict[int, list[int]] = field(default_factory=dict)  # conversation -> users
    direct_pairs: dict[tuple[int, int], int] = field(default_factory=dict)
    message_times: dict[int, datetime] = field(default_factory=dict)  # message -> naive created_at
    conversations: dict[str, int] = field(default_factory=dict)  # name -> id
    missing_creator: int = 0  # the conversation whose advertiser profile is gone


def _profiles() -> dict[tuple[str, int], int]:
    return {(kind, pid): uid for uid, (_, _, roles) in USERS.items() for kind, pid in roles.items()}


# name -> (type, group name, creator profile, member profiles with their role)
_CONVERSATIONS = {
    "student_tutor": ("direct", None, ("student", 1), [("student", 1), ("tutor", 1)]),
    "advertiser_tutor": ("direct", None, ("advertiser", 1), [("advertiser", 1), ("tutor", 1)]),
    "advertiser_group": (
        "group",
        "Exam preparation sponsors",
        ("advertiser", 2),
        [("advertiser", 2), ("student", 1), ("parent", 1), ("student", 3)],
    ),
    # Opened by an advertiser profile deleted since: the creator stays unresolved.
    "gone_advertiser": ("direct", None, ("advertiser", 9), [("student", 3), ("tutor", 1)]),
    "no_creator": ("direct", None, None, [("parent", 1), ("tutor", 2)]),
}


def build_original(url: str) -> OriginalFixture:
    create_legacy_schema(url, ORIGINAL_CHAT_DDL)
    profiles = _profiles()
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            emails = insert_users(cur, {uid: (name, roles) for uid, (name, roles, _) in USERS.items()})
            insert_profiles(cur, profiles)
            fx = OriginalFixture(emails)
            message_id = 0
            for number, (name, (kind, title, creator, members)) in enumerate(_CONVERSATIONS.items(), 1):
                start = BASE_TIME + timedelta(hours=number)
                cur.execute(
                    """INSERT INTO conversations (id, type, name, created_by_profile_id,
                           created_by_profile_type, created_at, updated_at, last_message_at)
                       VALUES (%(id)s, %(type)s, %(name)s, %(pid)s, %(ptype)s, %(at)s, %(at)s,
                               %(last)s)""",
                    {
                        "id": number,
                        "type": kind,
                        "name": title,
                        "pid": creator[1] if creator else None,
                        "ptype": creator[0] if creator else None,
                        "at": start,
                        "last": start + timedelta(minutes=len(members)),
                    },
                )
                fx.conversations[name] = number
                fx.creators[number] = profiles.get(creator) if creator else None
                fx.members[number] = [profiles[m] for m in members]
                if kind == "direct":
                    fx.direct_pairs[tuple(sorted(fx.members[number]))] = number
                for member in members:
                    cur.execute(
                        """INSERT INTO conversation_participants (conversation_id, profile_id,
                               profile_type, user_id, role, joined_at, last_read_at)
                           VALUES (%(c)s, %(pid)s, %(ptype)s, %(user)s, %(role)s, %(at)s, %(at)s)""",
                        {
                            "c": number,
                            "pid": member[1],
                            "ptype": member[0],
                            "user": profiles[member],
                            "role": "admin" if member == creator else "member",
                            "at": start,
                        },
                    )
                # One message from each member, a minute apart; a system line in the group.
                senders = [(m, profiles[m]) for m in members]
                if kind == "group":
                    senders.append((("system", 0), profiles[creator]))
                for i, (sender, uid) in enumerate(senders, 1):
                    message_id += 1
                    at = start + timedelta(minutes=i)
                    cur.execute(
                        """INSERT INTO chat_messages (id, conversation_id, sender_profile_id,
                               sender_profile_type, sender_user_id, message_type, content,
                               created_at, updated_at)
                           VALUES (%(id)s, %(c)s, %(pid)s, %(ptype)s, %(user)s, %(type)s,
                                   %(content)s, %(at)s, %(at)s)""",
                        {
                            "id": message_id,
                            "c": number,
                            "pid": sender[1],
                            "ptype": sender[0],
                            "user": uid,
                            "type": "system" if sender[0] == "system" else "text",
                            "content": f"message {i} in {name}",
                            "at": at,
                        },
                    )
                    fx.message_times[message_id] = at
            fx.missing_creator = fx.conversations["gone_advertiser"]
            # A reaction and a read receipt from every other member on each message.
            for table, column, value in (
                ("message_reactions", "reaction", "'thumbsup'"),
                ("message_read_receipts", "read_at", "m.created_at + interval '30 seconds'"),
            ):
                cur.execute(  # table, column, value: the fixed texts above
                    f"""INSERT INTO {table} (message_id, profile_id, profile_type, user_id, {column})
                        SELECT m.id, p.profile_id, p.profile_type, p.user_id, {value}
                          FROM chat_messages m
                          JOIN conversation_participants p
                            ON p.conversation_id = m.conversation_id AND p.user_id <> m.sender_user_id"""
                )
            advance_sequences(
                cur,
                (
                    "users",
                    "student_profiles",
                    "parent_profiles",
                    "tutor_profiles",
                    "advertiser_profiles",
                    "conversations",
                    "conversation_participants",
                    "chat_messages",
                ),
            )
    finally:
        conn.close()
    return fx


__all__ = ["PASSWORD", "SIDE_TABLES", "OriginalFixture", "build_original"]
