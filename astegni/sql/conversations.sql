-- The one direct conversation of a pair of users.

-- name: get_or_create_direct
-- Finds or creates the pair's direct conversation and makes both users participants, in one
-- call. The logic lives in schema.sql (direct_conversation_get_or_create), where the session
-- request create function calls it too: one source for "one direct conversation per pair".
SELECT conversation_id AS id, created
  FROM direct_conversation_get_or_create(%(creator_id)s, %(user_a)s, %(user_b)s);
