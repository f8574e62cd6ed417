"""The one-off migration of the chat tables from profile-based to user-based identity.

`migrate_conversations_to_user_based.py` is its command line; `runner.migrate` does the work in
phases, each safe to interrupt and to repeat:

1. schema (`steps.COLUMN_STEPS`): new nullable columns, legacy NOT NULLs dropped, foreign keys
   added NOT VALID, chat_message_edits; short transactions under a lock_timeout.
2. back-fill (`backfill`): user ids resolved through the profile table named by profile_type,
   in id-ordered batches, one transaction each.
3. identity (`identity`): duplicate participant rows marked, one canonical direct conversation
   per pair of users given its pair key.
4. indexes and validation (`steps.INDEX_STEPS`, `steps.VALIDATIONS`): built CONCURRENTLY, then
   the constraints validated without blocking writers.
"""
