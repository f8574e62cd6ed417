-- The user-based chat: conversation lists, message pages, sends, edits, deletes, read markers,
-- blocks.
-- Membership is always a row of conversation_participants with user_id = the caller and
-- duplicate_of_id IS NULL (conversation_participants_user_key / _user_idx serve every check).

-- ---------------------------------------------------------------- conversations

-- name: conversation_page
-- One page of the caller's conversations, newest activity first, in one statement.
-- The inner query sorts only the caller's own memberships (conversation_participants_user_idx,
-- then conversations_pkey) and cuts the page; the laterals then run for the page's rows only:
-- last message = one backward step of chat_messages_conversation_idx, unread = the index range
-- above the caller's read marker. Keyset cursor: (activity_at, id) strictly below the cursor.
-- only_id narrows the page to one conversation (GET /api/chat/conversations/{id}).
SELECT page.*,
       lm.id AS last_message_id, lm.content AS last_message_content,
       lm.message_type AS last_message_type, lm.sender_user_id AS last_message_sender_user_id,
       lm.created_at AS last_message_created_at, lm.is_deleted AS last_message_is_deleted,
       (SELECT count(*)
          FROM chat_messages u
         WHERE u.conversation_id = page.id
           AND u.id > coalesce(page.last_read_message_id, 0)
           AND u.sender_user_id IS DISTINCT FROM %(user_id)s
           AND NOT u.is_deleted) AS unread_count,
       ppl.participants
  FROM (SELECT c.id, c.type, c.name, c.created_by_user_id, c.created_at, c.last_message_at,
               coalesce(c.last_message_at, c.created_at) AS activity_at,
               me.last_read_message_id
          FROM conversation_participants me
          JOIN conversations c ON c.id = me.conversation_id
         WHERE me.user_id = %(user_id)s
           AND me.duplicate_of_id IS NULL
           AND (%(only_id)s::int IS NULL OR me.conversation_id = %(only_id)s::int)
           AND (%(before_at)s::timestamptz IS NULL
                OR (coalesce(c.last_message_at, c.created_at), c.id)
                   < (%(before_at)s::timestamptz, %(before_id)s::int))
         ORDER BY activity_at DESC, c.id DESC
         LIMIT %(limit)s) page
  LEFT JOIN LATERAL (
        SELECT m.id, m.content, m.message_type, m.sender_user_id, m.created_at, m.is_deleted
          FROM chat_messages m
         WHERE m.conversation_id = page.id
         ORDER BY m.id DESC
         LIMIT 1) lm ON true
 CROSS JOIN LATERAL (
        SELECT coalesce(json_agg(json_build_object(
                   'user_id', p.user_id,
                   'name', u.first_name || ' ' || u.father_name,
                   'role', p.role,
                   'last_read_message_id', p.last_read_message_id,
                   'joined_at', p.joined_at) ORDER BY p.user_id), '[]') AS participants
          FROM conversation_participants p
          JOIN users u ON u.id = p.user_id
         WHERE p.conversation_id = page.id AND p.duplicate_of_id IS NULL) ppl
 ORDER BY page.activity_at DESC, page.id DESC;

-- name: conversation_get_or_create_direct
-- Finds or creates the pair's direct conversation, both users participants, when the caller may
-- start one with the other user: an active user who does not block the caller and whom the
-- caller may reach (chat_reachable in functions.sql). No row otherwise, and nothing written.
-- The check and the write are one statement: no contact is judged on one state and written on
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

-- ---------------------------------------------------------------- blocks (the user_blocks table)

-- name: block_add
-- Blocks a user in one statement: an active user in contact with the caller (either may reach
-- the other: chat_reachable), or one the caller blocks already. Anyone else is not found, as a
-- missing user is, so that blocking tells a stranger nothing about a user (a child's name above
-- all). A row: the user may be blocked; created: this call blocked them (a repeat inserts
-- nothing, user_blocks_pkey decides, also between concurrent calls).
WITH target AS (
    SELECT u.id, u.first_name || ' ' || u.father_name AS name
      FROM users u
     WHERE u.id = %(user_id)s
       AND u.id <> %(blocker_id)s
       AND u.is_active
       AND (EXISTS (SELECT 1 FROM user_blocks b
                     WHERE b.blocker_user_id = %(blocker_id)s AND b.blocked_user_id = u.id)
            OR chat_reachable(%(blocker_id)s, u.id)
            OR chat_reachable(u.id, %(blocker_id)s))
), ins AS (
    INSERT INTO user_blocks (blocker_user_id, blocked_user_id)
    SELECT %(blocker_id)s, target.id FROM target
    ON CONFLICT (blocker_user_id, blocked_user_id) DO NOTHING
    RETURNING created_at
)
SELECT target.id AS user_id, target.name,
       (SELECT created_at FROM ins) AS created_at,
       EXISTS (SELECT 1 FROM ins) AS created
  FROM target;

-- name: block_get
-- One block of the caller's (user_blocks_pkey), with the blocked user's name.
SELECT b.blocked_user_id AS user_id, u.first_name || ' ' || u.father_name AS name, b.created_at
  FROM user_blocks b
  JOIN users u ON u.id = b.blocked_user_id
 WHERE b.blocker_user_id = %(blocker_id)s AND b.blocked_user_id = %(user_id)s;

-- name: block_list
-- The caller's blocks, newest first (user_blocks_pkey: the caller's range).
SELECT b.blocked_user_id AS user_id, u.first_name || ' ' || u.father_name AS name, b.created_at
  FROM user_blocks b
  JOIN users u ON u.id = b.blocked_user_id
 WHERE b.blocker_user_id = %(blocker_id)s
 ORDER BY b.created_at DESC, b.blocked_user_id;

-- name: block_remove
-- Unblocks; no row to delete is no error (user_blocks_pkey).
DELETE FROM user_blocks
 WHERE blocker_user_id = %(blocker_id)s AND blocked_user_id = %(user_id)s;

-- ---------------------------------------------------------------- messages

-- name: messages_before
-- The newest page of a conversation below before_id (the latest page without it), for a
-- participant only: no row at all when the caller is not one, one all-NULL row when the page is
-- empty. A backward range scan of chat_messages_conversation_idx; before_id is never NULL (the
-- latest page is below BIGINT_MAX), which keeps the bound an index condition in the generic plan.
-- Rows come newest first; the API reverses them.
SELECT m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
       m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at,
       m.sender_name
  FROM conversation_participants me
  LEFT JOIN LATERAL (
        SELECT m.*, su.first_name || ' ' || su.father_name AS sender_name
          FROM chat_messages m
          LEFT JOIN users su ON su.id = m.sender_user_id
         WHERE m.conversation_id = me.conversation_id
           AND m.id < %(before_id)s::bigint
         ORDER BY m.id DESC
         LIMIT %(limit)s) m ON true
 WHERE me.conversation_id = %(conversation_id)s
   AND me.user_id = %(user_id)s
   AND me.duplicate_of_id IS NULL;

-- name: messages_after
-- A reconnecting client's catch-up: the oldest page above after_id (and below before_id when
-- given), oldest first; same membership rule and index as messages_before, scanned forwards.
SELECT m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
       m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at,
       m.sender_name
  FROM conversation_participants me
  LEFT JOIN LATERAL (
        SELECT m.*, su.first_name || ' ' || su.father_name AS sender_name
          FROM chat_messages m
          LEFT JOIN users su ON su.id = m.sender_user_id
         WHERE m.conversation_id = me.conversation_id
           AND m.id > %(after_id)s::bigint
           AND m.id < %(before_id)s::bigint
         ORDER BY m.id
         LIMIT %(limit)s) m ON true
 WHERE me.conversation_id = %(conversation_id)s
   AND me.user_id = %(user_id)s
   AND me.duplicate_of_id IS NULL;

-- name: send_message
-- Sends a text message in one statement: inserts it when the sender is a participant whom no
-- other participant blocks (checked in this statement, user_blocks_pkey) and the reply target
-- (if any) is a message of the same conversation, bumps the conversation's activity, and
-- returns the recipients of the event. A repeated client_message_id inserts
-- nothing (chat_messages_client_id_key decides, even for concurrent retries); the caller then
-- reads the first message with message_by_client_id.
WITH member AS (
    SELECT p.conversation_id,
           EXISTS (SELECT 1
                     FROM conversation_participants o
                     JOIN user_blocks b
                       ON b.blocker_user_id = o.user_id AND b.blocked_user_id = p.user_id
                    WHERE o.conversation_id = p.conversation_id
                      AND o.duplicate_of_id IS NULL) AS blocked
      FROM conversation_participants p
     WHERE p.conversation_id = %(conversation_id)s
       AND p.user_id = %(user_id)s
       AND p.duplicate_of_id IS NULL
), ins AS (
    INSERT INTO chat_messages (conversation_id, sender_user_id, message_type, content,
                               reply_to_id, client_message_id)
    SELECT member.conversation_id, %(user_id)s, 'text', %(content)s, %(reply_to_id)s::bigint,
           %(client_message_id)s
      FROM member
     WHERE NOT member.blocked
       AND (%(reply_to_id)s::bigint IS NULL
        OR EXISTS (SELECT 1 FROM chat_messages r
                    WHERE r.id = %(reply_to_id)s::bigint
                      AND r.conversation_id = member.conversation_id))
    ON CONFLICT (sender_user_id, client_message_id) WHERE client_message_id IS NOT NULL
    DO NOTHING
    RETURNING *
), bump AS (
    UPDATE conversations c
       SET last_message_at = greatest(c.last_message_at, ins.created_at), updated_at = now()
      FROM ins
     WHERE c.id = ins.conversation_id
)
SELECT EXISTS (SELECT 1 FROM member) AS is_member,
       coalesce((SELECT blocked FROM member), false) AS blocked,
       m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
       m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at,
       su.first_name || ' ' || su.father_name AS sender_name,
       (SELECT array_agg(p.user_id)
          FROM conversation_participants p
         WHERE p.conversation_id = %(conversation_id)s
           AND p.duplicate_of_id IS NULL AND p.user_id IS NOT NULL) AS recipients
  FROM (SELECT 1) one
  LEFT JOIN ins m ON true
  LEFT JOIN users su ON su.id = m.sender_user_id;

-- name: message_by_client_id
-- The message a retried send refers to (chat_messages_client_id_key).
SELECT m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
       m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at,
       su.first_name || ' ' || su.father_name AS sender_name
  FROM chat_messages m
  LEFT JOIN users su ON su.id = m.sender_user_id
 WHERE m.sender_user_id = %(user_id)s AND m.client_message_id = %(client_message_id)s;

-- name: lock_message
-- A message the caller may see (a participant of its conversation), locked for an edit or a
-- delete; no row for anyone else. chat_messages_pkey, then conversation_participants_user_key.
-- blocked: another participant blocks the caller (user_blocks_pkey).
SELECT m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
       m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at,
       (SELECT su.first_name || ' ' || su.father_name FROM users su
         WHERE su.id = m.sender_user_id) AS sender_name,
       EXISTS (SELECT 1
                 FROM conversation_participants o
                 JOIN user_blocks b
                   ON b.blocker_user_id = o.user_id AND b.blocked_user_id = %(user_id)s
                WHERE o.conversation_id = m.conversation_id
                  AND o.duplicate_of_id IS NULL) AS blocked
  FROM chat_messages m
  JOIN conversation_participants me
    ON me.conversation_id = m.conversation_id
   AND me.user_id = %(user_id)s
   AND me.duplicate_of_id IS NULL
 WHERE m.id = %(message_id)s
   FOR UPDATE OF m;

-- name: edit_message
-- Keeps the previous content in chat_message_edits and writes the new one.
WITH history AS (
    INSERT INTO chat_message_edits (message_id, previous_content)
    SELECT id, content FROM chat_messages WHERE id = %(message_id)s
)
UPDATE chat_messages m
   SET content = %(content)s, edited_at = now(), updated_at = now()
 WHERE m.id = %(message_id)s
RETURNING m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
          m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at,
          (SELECT su.first_name || ' ' || su.father_name FROM users su
            WHERE su.id = m.sender_user_id) AS sender_name,
          (SELECT array_agg(p.user_id) FROM conversation_participants p
            WHERE p.conversation_id = m.conversation_id
              AND p.duplicate_of_id IS NULL AND p.user_id IS NOT NULL) AS recipients;

-- name: delete_message
-- Soft delete: the row stays (replies and read markers still point at it); its content is
-- hidden by message_json.
UPDATE chat_messages m
   SET is_deleted = true, deleted_at = now(), updated_at = now()
 WHERE m.id = %(message_id)s
RETURNING m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
          m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at,
          (SELECT su.first_name || ' ' || su.father_name FROM users su
            WHERE su.id = m.sender_user_id) AS sender_name,
          (SELECT array_agg(p.user_id) FROM conversation_participants p
            WHERE p.conversation_id = m.conversation_id
              AND p.duplicate_of_id IS NULL AND p.user_id IS NOT NULL) AS recipients;

-- ---------------------------------------------------------------- read markers

-- name: mark_read
-- Moves the caller's read marker forward to a message of the conversation, never back
-- (GREATEST in the one UPDATE; a marker at or past the message leaves the row untouched).
-- Returns whether the caller is a participant, whether the message belongs to the
-- conversation, the marker now in force, whether it moved, the caller's unread count and the
-- participants to tell.
WITH me AS (
    SELECT p.id, p.last_read_message_id
      FROM conversation_participants p
     WHERE p.conversation_id = %(conversation_id)s
       AND p.user_id = %(user_id)s
       AND p.duplicate_of_id IS NULL
), target AS (
    SELECT m.id FROM chat_messages m
     WHERE m.id = %(message_id)s AND m.conversation_id = %(conversation_id)s
), moved AS (
    UPDATE conversation_participants p
       SET last_read_message_id = greatest(p.last_read_message_id, target.id),
           last_read_at = now()
      FROM me, target
     WHERE p.id = me.id
       AND (p.last_read_message_id IS NULL OR p.last_read_message_id < target.id)
    RETURNING p.last_read_message_id
), marker AS (
    SELECT coalesce((SELECT last_read_message_id FROM moved),
                    (SELECT last_read_message_id FROM me)) AS last_read_message_id
)
SELECT EXISTS (SELECT 1 FROM me) AS is_member,
       EXISTS (SELECT 1 FROM target) AS message_found,
       EXISTS (SELECT 1 FROM moved) AS moved,
       marker.last_read_message_id,
       (SELECT count(*) FROM chat_messages u
         WHERE u.conversation_id = %(conversation_id)s
           AND u.id > coalesce(marker.last_read_message_id, 0)
           AND u.sender_user_id IS DISTINCT FROM %(user_id)s
           AND NOT u.is_deleted) AS unread_count,
       (SELECT array_agg(p.user_id) FROM conversation_participants p
         WHERE p.conversation_id = %(conversation_id)s
           AND p.duplicate_of_id IS NULL AND p.user_id IS NOT NULL) AS recipients
  FROM marker;

-- name: read_status
-- Every participant's read marker, for a participant only (no rows for anyone else).
SELECT p.user_id, u.first_name || ' ' || u.father_name AS name,
       p.last_read_message_id, p.last_read_at
  FROM conversation_participants me
  JOIN conversation_participants p
    ON p.conversation_id = me.conversation_id AND p.duplicate_of_id IS NULL
  JOIN users u ON u.id = p.user_id
 WHERE me.conversation_id = %(conversation_id)s
   AND me.user_id = %(user_id)s
   AND me.duplicate_of_id IS NULL
 ORDER BY p.user_id;
