-- The one direct conversation of a pair of users.
-- Names start with conversation_: prepared statements share one namespace per connection.

-- name: conversation_get_or_create_direct
-- Finds or creates the pair's direct conversation, both users participants, when the caller may
-- start one with the other user: an active user who does not block the caller and whom the
-- caller may reach (chat_reachable in repeatable/chat.sql). No row otherwise, and nothing written. The
-- check and the write are one statement: no contact is judged on one state and written on
-- another. The creation is direct_conversation_get_or_create, which the session request create
-- calls too: one source for "one direct conversation per pair".
WITH other AS MATERIALIZED (  -- judged first: the function below runs for a reachable user only
    SELECT u.id
      FROM users u
     WHERE u.id = %(other_id)s
       AND u.id <> %(caller_id)s
       AND u.is_active
       AND NOT EXISTS (SELECT 1 FROM user_blocks b
                        WHERE b.blocker_user_id = u.id AND b.blocked_user_id = %(caller_id)s)
       AND chat_reachable(%(caller_id)s, u.id)
)
SELECT g.conversation_id AS id, g.created
  FROM other
 CROSS JOIN LATERAL direct_conversation_get_or_create(%(caller_id)s, %(caller_id)s, other.id) g;
