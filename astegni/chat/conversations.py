"""Direct conversations: exactly one per pair of users (conversations_direct_pair_key), started
only with a user the caller has a reason to reach."""

from __future__ import annotations

from typing import Any

from astegni.core.errors import NotFound
from astegni.core.queries import Queries, fetch_one

queries = Queries("chat/conversations.sql")


def get_or_create_direct(cur: Any, caller_id: int, other_user_id: int) -> tuple[int, bool]:
    """The id of the pair's direct conversation (created if new) and whether it was.

    A user the caller may not reach (a stranger's child above all), who blocks the caller, is
    deactivated or does not exist: the same 404, so that the answer tells a stranger nothing."""
    row = fetch_one(
        cur,
        queries.conversation_get_or_create_direct,
        {"caller_id": caller_id, "other_id": other_user_id},
    )
    if row is None:
        raise NotFound("User not found")
    return row["id"], row["created"]
