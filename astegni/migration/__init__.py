"""The one-off migration of the chat tables from profile-based to user-based identity.

`migrate_conversations_to_user_based.py` is its command line; `runner.migrate` does the work in
phases, each safe to interrupt and to repeat:

1. schema (`steps.COLUMN_STEPS`, `steps.timestamp_steps`, `steps.legacy_check_steps`): new
   nullable columns, legacy NOT NULLs dropped, naive timestamps made timestamptz (read as UTC),
   legacy CHECKs on the application's message types dropped, chat_message_edits; short
   transactions under a lock_timeout.
2. back-fill (`backfill`): user ids resolved through the profile table named by profile_type
   (every `<type>_profiles` table the catalog holds), in id-ordered batches, one transaction each.
3. identity (`identity`): duplicate participant rows marked, one canonical direct conversation
   per pair of users given its pair key.
4. indexes and validation (`steps.INDEX_STEPS`, `steps.VALIDATIONS`): built CONCURRENTLY, then
   the constraints validated without blocking writers.

`report.summary` turns the result into the lines the script prints. docs/migration.md is the
design note.
"""
