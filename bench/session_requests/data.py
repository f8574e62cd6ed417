"""The benchmark's database: the seed both load generators share, and the tables they write."""

from __future__ import annotations

import argparse
import time

import psycopg2

from astegni.core.schema import apply_schema
from astegni.core.security import hash_password
from astegni.core.settings import Settings
from tests.support.remote import sql

SECRET = "bench-secret-key-that-is-long-enough-0123456789"
EXPIRY_SECONDS = 7 * 86400
RATE_LIMIT = Settings(database_url="postgresql://x", secret_key=SECRET).request_rate_per_minute

SEED_SQL = """
INSERT INTO users (id, email, password_hash, first_name, father_name, roles, active_role)
SELECT g, 'student' || g || '@bench.astegni.test', %(hash)s, 'Student', 'Number ' || g,
       '{student}', 'student'
  FROM generate_series(1, %(students)s) g;
INSERT INTO student_profiles (id, user_id, grade_level)
SELECT g, g, 'Grade ' || (9 + g %% 4) FROM generate_series(1, %(students)s) g;
INSERT INTO users (id, email, password_hash, first_name, father_name, roles, active_role)
SELECT %(students)s + g, 'tutor' || g || '@bench.astegni.test', %(hash)s, 'Tutor', 'Number ' || g,
       '{tutor}', 'tutor'
  FROM generate_series(1, %(tutors)s) g;
INSERT INTO tutor_profiles (id, user_id, bio, subjects)
SELECT g, %(students)s + g, 'Experienced tutor', '{Mathematics,Physics}'
  FROM generate_series(1, %(tutors)s) g;
INSERT INTO tutor_packages (id, tutor_id, name, description, hourly_rate, schedule_days,
                            start_time, end_time)
SELECT g, (g - 1) / %(packages)s + 1, 'Package ' || g, 'Weekly sessions', 100 + (g %% 9) * 50,
       '{Monday,Wednesday}', '14:00', '16:00'
  FROM generate_series(1, %(tutors)s * %(packages)s) g;
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
SELECT setval(pg_get_serial_sequence('student_profiles', 'id'), %(students)s);
SELECT setval(pg_get_serial_sequence('tutor_profiles', 'id'), %(tutors)s);
SELECT setval(pg_get_serial_sequence('tutor_packages', 'id'), %(tutors)s * %(packages)s);
"""

# What one request writes; emptied between the two phases so that both start alike.
WRITTEN = (
    "requested_sessions, session_request_events, chat_messages, conversation_participants, "
    "conversations, rate_limits, idempotency_keys, realtime_events, enrolled_students"
)


def seed(url: str, args: argparse.Namespace) -> None:
    started = time.monotonic()
    conn = psycopg2.connect(url)
    try:
        apply_schema(conn)
        settings = Settings(database_url=url, secret_key=SECRET)
        with conn, conn.cursor() as cur:
            cur.execute(
                SEED_SQL,
                {
                    "hash": hash_password(settings, "bench-password"),
                    "students": args.students,
                    "tutors": args.tutors,
                    "packages": args.packages,
                },
            )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    print(
        f"seeded {args.students:,} students, {args.tutors:,} tutors, "
        f"{args.tutors * args.packages:,} packages in {time.monotonic() - started:.1f}s",
        flush=True,
    )


def pair_count(args: argparse.Namespace) -> int:
    """The (student, package) pairs of the seed, which both load generators walk."""
    return args.students * args.tutors * args.packages


def empty_written_tables(url: str) -> None:
    sql(url, f"TRUNCATE {WRITTEN} CASCADE")


def analyze_written_tables(url: str) -> None:
    """Called after each warm-up, as autovacuum would have done on a live database. Without it
    every connection keeps the plans it made while these tables were empty (sequential scans,
    foreign-key checks included) and a create costs ~2.5x the PostgreSQL time; ANALYZE
    invalidates them."""
    sql(url, f"ANALYZE {WRITTEN}")


def count_rows(url: str) -> dict[str, int]:
    ((requests, messages, conversations),) = sql(
        url,
        "SELECT (SELECT count(*) FROM requested_sessions), (SELECT count(*) FROM chat_messages),"
        " (SELECT count(*) FROM conversations)",
    )
    return {"requests": requests, "messages": messages, "conversations": conversations}
