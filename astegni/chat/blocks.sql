-- Blocks between users (the user_blocks table).
-- Names start with block_: prepared statements share one namespace per connection.

-- name: block_add
-- Blocks a user in one statement: an active user in contact with the caller (either may reach
-- the other: chat_reachable), or one the caller blocks already. Anyone else is not found, as a
-- missing user is, so that blocking tells a stranger nothing about a user (a child's name above
-- all). found: the user may be blocked; created: this call blocked them (a repeat inserts
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
