"""Making user-based lookups well defined on legacy data, without deleting or changing a row.

- A user who took part in one conversation through two profiles has two participant rows. The
  later row (higher id) gets duplicate_of_id = the earlier one; the partial unique index
  conversation_participants_user_key (WHERE duplicate_of_id IS NULL) then holds, and the
  application sees the user once.
- A pair of users may have several direct conversations. All are kept, messages intact, listed
  for both users; the one with the latest activity (last_message_at, else created_at; then the
  higher id) becomes canonical: it gets the pair key (direct_user_low, direct_user_high), so
  every new request between the two lands in it. The others keep a NULL pair key.

A conversation is direct when its type is 'direct' and its participants resolve to exactly two
distinct users. The queries work before the back-fill too (the user id is COALESCEd with the
profile's user), which is what the dry run reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg2 import sql

from astegni.migration.backfill import profiles_sql
from astegni.migration.locks import LockPolicy, with_lock_retries


@dataclass(frozen=True)
class Duplicate:
    participant_id: int
    conversation_id: int
    user_id: int
    kept_id: int


@dataclass(frozen=True)
class DuplicatePair:
    low: int
    high: int
    canonical: int
    others: list[int]


# Participant rows resolved to users; rows already marked as duplicates are left out.
_RESOLVED = sql.SQL(
    """SELECT cp.id, cp.conversation_id, coalesce(cp.user_id, p.user_id) AS user_id
         FROM conversation_participants AS cp
         LEFT JOIN {profiles} AS p ON p.profile_type = cp.profile_type AND p.profile_id = cp.profile_id
        WHERE {unmarked}"""
)

_DUPLICATES = sql.SQL(
    """WITH resolved AS ({resolved}),
       ranked AS (
           SELECT id, conversation_id, user_id,
                  first_value(id) OVER (PARTITION BY conversation_id, user_id ORDER BY id) AS kept_id
             FROM resolved WHERE user_id IS NOT NULL)
       SELECT id, conversation_id, user_id, kept_id FROM ranked WHERE id <> kept_id"""
)

_MARK = sql.SQL(
    """UPDATE conversation_participants AS cp SET duplicate_of_id = d.kept_id
         FROM ({duplicates}) AS d
        WHERE cp.id = d.id
    RETURNING cp.id, d.conversation_id, d.user_id, d.kept_id"""
)

# Every direct conversation whose participants are two distinct users, ranked within its pair:
# the holder of the pair key first, then the latest activity.
_CANDIDATES = sql.SQL(
    """WITH resolved AS ({resolved}),
       members AS (
           SELECT conversation_id, min(user_id) AS low, max(user_id) AS high
             FROM resolved WHERE user_id IS NOT NULL
            GROUP BY conversation_id HAVING count(DISTINCT user_id) = 2)
       SELECT c.id, m.low, m.high,
              row_number() OVER (PARTITION BY m.low, m.high
                                 ORDER BY {held} DESC,
                                          coalesce(c.last_message_at, c.created_at) DESC, c.id DESC)
                  AS rank,
              count(*) OVER (PARTITION BY m.low, m.high) AS in_pair,
              {held} AS held
         FROM conversations AS c JOIN members AS m ON m.conversation_id = c.id
        WHERE c.type = 'direct'"""
)


# After the back-fill every resolvable row carries its user: the real run needs no profile join.
_BACKFILLED = sql.SQL(
    "SELECT id, conversation_id, user_id FROM conversation_participants WHERE duplicate_of_id IS NULL"
)


def _resolved(
    migrated: bool, backfilled: bool = False, profile_types: tuple[str, ...] = ()
) -> sql.Composable:
    """migrated: the new columns exist (dry run on a database migrated before, or the real run);
    backfilled: the user ids are filled (the real run, after phase 2); before that, rows resolve
    through the profile tables of profile_types."""
    if backfilled:
        return _BACKFILLED
    unmarked = sql.SQL("cp.duplicate_of_id IS NULL" if migrated else "true")
    return _RESOLVED.format(profiles=profiles_sql(profile_types), unmarked=unmarked)


def _candidates(
    migrated: bool, backfilled: bool = False, profile_types: tuple[str, ...] = ()
) -> sql.Composed:
    held = sql.SQL(
        "(c.direct_user_low IS NOT NULL AND c.direct_user_low = m.low AND c.direct_user_high = m.high)"
        if migrated
        else "false"
    )
    return _CANDIDATES.format(resolved=_resolved(migrated, backfilled, profile_types), held=held)


def find_duplicates(cur, migrated: bool, profile_types: tuple[str, ...]) -> list[Duplicate]:
    cur.execute(_DUPLICATES.format(resolved=_resolved(migrated, profile_types=profile_types)))
    return sorted(Duplicate(*row) for row in cur.fetchall())


def mark_duplicates(conn, policy: LockPolicy, say: Callable[[str], None]) -> list[Duplicate]:
    """Point each later participant row of a user at the first one; returns the rows marked."""

    def work() -> list[Duplicate]:
        with conn, conn.cursor() as cur:
            cur.execute(_MARK.format(duplicates=_DUPLICATES.format(resolved=_resolved(True, True))))
            return sorted(Duplicate(*row) for row in cur.fetchall())

    return with_lock_retries(conn, "conversation_participants", work, policy, say)


def find_duplicate_pairs(cur, migrated: bool, profile_types: tuple[str, ...]) -> list[DuplicatePair]:
    """The pairs of users with more than one direct conversation, canonical one first."""
    cur.execute(
        sql.SQL(
            """SELECT low, high, array_agg(id ORDER BY rank) FROM ({candidates}) AS k
                WHERE in_pair > 1 GROUP BY low, high ORDER BY low, high"""
        ).format(candidates=_candidates(migrated, profile_types=profile_types))
    )
    return [DuplicatePair(low, high, ids[0], ids[1:]) for low, high, ids in cur.fetchall()]


def kept_duplicate_pairs(cur) -> list[DuplicatePair]:
    """After the migration: the direct conversations left without the pair key whose pair is
    held by another one (cheap: starts from the conversations without a key)."""
    cur.execute(
        """WITH unkeyed AS (
               SELECT p.conversation_id, min(p.user_id) AS low, max(p.user_id) AS high
                 FROM conversations AS c
                 JOIN conversation_participants AS p
                   ON p.conversation_id = c.id AND p.duplicate_of_id IS NULL AND p.user_id IS NOT NULL
                WHERE c.type = 'direct' AND c.direct_user_low IS NULL
                GROUP BY p.conversation_id HAVING count(DISTINCT p.user_id) = 2)
           SELECT u.low, u.high, h.id,
                  array_agg(u.conversation_id ORDER BY coalesce(o.last_message_at, o.created_at) DESC,
                            u.conversation_id DESC)
             FROM unkeyed AS u
             JOIN conversations AS h ON h.direct_user_low = u.low AND h.direct_user_high = u.high
             JOIN conversations AS o ON o.id = u.conversation_id
            GROUP BY u.low, u.high, h.id ORDER BY u.low, u.high"""
    )
    return [DuplicatePair(low, high, canonical, others) for low, high, canonical, others in cur.fetchall()]


def count_pairs_to_set(cur, migrated: bool, profile_types: tuple[str, ...]) -> int:
    cur.execute(
        sql.SQL("SELECT count(*) FROM ({candidates}) AS k WHERE rank = 1 AND NOT held").format(
            candidates=_candidates(migrated, profile_types=profile_types)
        )
    )
    return cur.fetchone()[0]


def set_pair_keys(conn, batch_size: int, policy: LockPolicy, say: Callable[[str], None]) -> int:
    """Give each pair's canonical conversation its pair key, in id-range batches."""
    with conn, conn.cursor() as cur:
        # The ranking needs whole pairs, so it is computed once; the updates then go by id range.
        cur.execute("DROP TABLE IF EXISTS pg_temp.migration_pair_keys")
        cur.execute(
            sql.SQL(
                """CREATE TABLE pg_temp.migration_pair_keys AS
                   SELECT id, low, high FROM ({candidates}) AS k WHERE rank = 1 AND NOT held"""
            ).format(candidates=_candidates(True, backfilled=True))
        )
        cur.execute("CREATE INDEX ON migration_pair_keys (id)")
    after, total = 0, 0

    def one_batch() -> tuple[int | None, int]:
        with conn, conn.cursor() as cur:
            cur.execute(
                """SELECT max(id) FROM (SELECT id FROM migration_pair_keys WHERE id > %(after)s
                                         ORDER BY id LIMIT %(limit)s) AS batch""",
                {"after": after, "limit": batch_size},
            )
            upto = cur.fetchone()[0]
            if upto is None:
                return None, 0
            # NOT EXISTS: never take a pair key that another conversation holds already.
            cur.execute(
                """UPDATE conversations AS c SET direct_user_low = k.low, direct_user_high = k.high
                     FROM migration_pair_keys AS k
                    WHERE k.id > %(after)s AND k.id <= %(upto)s AND c.id = k.id
                      AND c.direct_user_low IS NULL
                      AND NOT EXISTS (SELECT 1 FROM conversations AS h
                                       WHERE h.direct_user_low = k.low AND h.direct_user_high = k.high)""",
                {"after": after, "upto": upto},
            )
            return upto, cur.rowcount

    while True:
        upto, count = with_lock_retries(conn, "conversations", one_batch, policy, say)
        if upto is None:
            break
        after, total = upto, total + count
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE pg_temp.migration_pair_keys")
    return total
