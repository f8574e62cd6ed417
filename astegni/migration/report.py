"""What the migration prints when it is done (or, in a dry run, what it would do)."""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from astegni.migration.runner import Result

MAX_IDS_SHOWN = 50


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_IDS_SHOWN])
    return shown + (f", … ({len(ids) - MAX_IDS_SHOWN} more)" if len(ids) > MAX_IDS_SHOWN else "")


def summary(result: Result, dry_run: bool) -> list[str]:
    lines: list[str] = []
    if dry_run:
        lines.append(f"Dry run: nothing was changed. For {result.conversations} conversations it would:")
        lines += [f"  - {change}" for change in result.schema_changes]
        lines += [
            f"  - fill {label} on {count} rows ({result.already_set[label]} already set)"
            for label, count in result.resolved.items()
        ]
        lines.append(f"  - give {result.pair_keys_set} direct conversations their pair key")
    elif not result.changed:
        lines.append(
            f"✓ Nothing to do: the database is already migrated ({result.conversations} conversations)"
        )
    else:
        lines.append(f"✓ {result.conversations} existing conversations migrated")
        lines += [
            f"✓ {label}: {count} rows resolved, {result.already_set[label]} already set"
            for label, count in result.resolved.items()
        ]
        if result.made_nullable:
            lines.append("✓ Profile columns made nullable: " + ", ".join(result.made_nullable))
        lines.append("✓ Backward compatible (old profile columns and their values kept)")
        lines.append(
            f"✓ {len(result.schema_changes)} schema changes; "
            f"{result.pair_keys_set} direct conversations given their pair key"
        )
    marked = "would be marked" if dry_run else "marked"
    lines += [
        f"✓ participant row {d.participant_id} {marked} duplicate of row {d.kept_id} "
        f"(user {d.user_id} twice in conversation {d.conversation_id}, through two profiles)"
        for d in result.duplicates
    ]
    lines += [
        f"✓ users {p.low} and {p.high} have {1 + len(p.others)} direct conversations: {p.canonical} is "
        f"canonical (latest activity), {', '.join(map(str, p.others))} kept without the pair key"
        for p in result.duplicate_pairs
    ]
    for label, rows in result.unresolved.items():
        lines += _unresolved(label, rows, result.profile_types)
    lines += [f"⚠ constraint left NOT VALID (new rows are still checked): {p}" for p in result.not_validated]
    return lines


def _unresolved(label: str, rows: list[tuple[int, str]], profile_types: tuple[str, ...]) -> list[str]:
    """Rows left NULL, by reason: a profile of a known type that is gone, or a type that names no
    profile table at all."""
    lines = []
    missing = [row_id for row_id, kind in rows if kind in profile_types]
    if missing:
        lines.append(
            f"⚠ {label}: {len(missing)} rows unresolved (their profile no longer exists), "
            f"left NULL: ids {_ids(missing)}"
        )
    unknown = sorted((kind, row_id) for row_id, kind in rows if kind not in profile_types)
    for kind, group in groupby(unknown, key=lambda pair: pair[0]):
        ids = [row_id for _, row_id in group]
        lines.append(
            f"⚠ {label}: {len(ids)} rows unresolved (unknown profile type {kind!r}: no "
            f"{kind}_profiles table), left NULL: ids {_ids(ids)}"
        )
    return lines
