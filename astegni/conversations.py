"""Direct conversations: exactly one per pair of users, kept so by conversations_direct_pair_key."""

from __future__ import annotations

from typing import Any

from astegni.queries import Queries, fetch_one

queries = Queries("conversations.sql")


def get_or_create_direct(cur: Any, creator_id: int, other_user_id: int) -> tuple[int, bool]:
    """The id of the direct conversation of the two users (created if new) and whether it was."""
    row = fetch_one(
        cur,
        queries.get_or_create_direct,
        {"creator_id": creator_id, "user_a": creator_id, "user_b": other_user_id},
    )
    return row["id"], row["created"]
