-- Email notifications: the outbox's claim and outcomes (astegni/notifications/outbox.py), the
-- chat digest, and the preferences of GET/PUT /api/me/notifications.

-- name: email_claim
-- Up to `limit` due rows for this process: pending ones whose time has come, and 'sending' ones
-- whose lease ran out (their process died or lost the database mid-send). SKIP LOCKED: processes
-- claiming at once take different rows. The claim counts an attempt and leases the row for
-- lease_seconds under a new token; only that token may record the outcome. email_outbox_due_idx.
WITH due AS (
    SELECT id FROM email_outbox
     WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()
     ORDER BY next_attempt_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE email_outbox o
   SET status = 'sending', attempts = o.attempts + 1, claim_token = %(token)s::uuid,
       next_attempt_at = now() + make_interval(secs => %(lease_seconds)s), updated_at = now()
  FROM due, users u
 WHERE o.id = due.id AND u.id = o.user_id
RETURNING o.id, o.kind, o.user_id, o.data, o.attempts, o.created_at,
          u.email, u.locale, u.first_name || ' ' || u.father_name AS name,
          u.is_active AND NOT EXISTS (SELECT 1 FROM email_opt_outs x
                                       WHERE x.user_id = o.user_id AND x.kind = o.kind) AS wanted;

-- name: email_mark_sent
-- The mail server took the message (or the recipient does not want it: status 'skipped').
UPDATE email_outbox
   SET status = %(status)s, sent_at = now(), claim_token = NULL, last_error = NULL,
       updated_at = now()
 WHERE id = %(id)s AND status = 'sending' AND claim_token = %(token)s::uuid;

-- name: email_mark_failed
-- A failed send: retried after an exponential backoff (base * 2^(attempts - 1), capped, with
-- +-25 %% jitter so that processes do not retry in step), or 'dead' when it was the last
-- attempt or the failure is permanent.
UPDATE email_outbox
   SET status = CASE WHEN %(permanent)s OR attempts >= %(max_attempts)s THEN 'dead'
                     ELSE 'pending' END,
       next_attempt_at = now() + make_interval(secs => least(
           %(max_backoff)s::float8, %(base_backoff)s * 2 ^ (attempts - 1)) * (0.75 + random() / 2)),
       claim_token = NULL, last_error = left(%(error)s, 2000), updated_at = now()
 WHERE id = %(id)s AND status = 'sending' AND claim_token = %(token)s::uuid;

-- name: email_release
-- Claimed rows this process did not get to (it is stopping, or the batch ran long): due again
-- at once, the claim's attempt given back.
UPDATE email_outbox
   SET status = 'pending', attempts = attempts - 1, next_attempt_at = now(), claim_token = NULL,
       updated_at = now()
 WHERE id = ANY (%(ids)s::bigint[]) AND status = 'sending' AND claim_token = %(token)s::uuid;

-- name: email_bury_expired
-- Rows whose lease ran out on their last attempt (a process died sending them each time).
UPDATE email_outbox
   SET status = 'dead', claim_token = NULL, updated_at = now(),
       last_error = coalesce(last_error, 'lease expired on the last attempt')
 WHERE status = 'sending' AND next_attempt_at <= now() AND attempts >= %(max_attempts)s;

-- name: email_dead
-- What an operator reads: the rows that gave up, newest first (email_outbox_dead_idx).
SELECT o.id, o.kind, o.user_id, u.email, o.attempts, o.last_error, o.created_at, o.updated_at
  FROM email_outbox o
  JOIN users u ON u.id = o.user_id
 WHERE o.status = 'dead'
 ORDER BY o.updated_at DESC
 LIMIT %(limit)s;

-- name: email_retry_dead
-- An operator sends dead rows again (after fixing the cause): pending, attempts from zero.
UPDATE email_outbox
   SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
 WHERE status = 'dead' AND (%(id)s::bigint IS NULL OR id = %(id)s::bigint);

-- name: email_digest_enqueue
-- The chat digests due now, in one statement: for each participant of a conversation active in
-- the last `lookback_seconds`, the unread text messages from others (request cards and system
-- notices have emails of their own), above both their read marker
-- and the newest message an earlier digest told of, when the oldest of them is older than
-- delay_seconds. chat_digest_marks decides "at most one per conversation and interval": its
-- upsert only moves when the previous digest is older than interval_seconds, and a concurrent
-- scan in another process re-checks that condition on the row it waited for, so only one wins.
-- Only a mark that moved gets its outbox row. The scan reads conversations sequentially (an
-- index on last_message_at would cost every message send a non-HOT update) and one index
-- range of chat_messages_unread_idx per participant.
WITH candidates AS (
    SELECT p.conversation_id, p.user_id, un.last_message_id, un.unread, un.senders
      FROM conversations c
      JOIN conversation_participants p
        ON p.conversation_id = c.id AND p.duplicate_of_id IS NULL AND p.user_id IS NOT NULL
      LEFT JOIN chat_digest_marks d ON d.conversation_id = p.conversation_id AND d.user_id = p.user_id
     CROSS JOIN LATERAL (
            SELECT max(m.id) AS last_message_id, count(*) AS unread, min(m.created_at) AS oldest,
                   array_agg(DISTINCT su.first_name || ' ' || su.father_name) AS senders
              FROM chat_messages m
              JOIN users su ON su.id = m.sender_user_id
             WHERE m.conversation_id = p.conversation_id
               AND m.id > greatest(coalesce(p.last_read_message_id, 0), coalesce(d.last_message_id, 0))
               AND m.sender_user_id <> p.user_id
               AND m.message_type = 'text'
               -- nothing from someone the reader blocks (user_blocks_pkey)
               AND NOT EXISTS (SELECT 1 FROM user_blocks b
                                WHERE b.blocker_user_id = p.user_id
                                  AND b.blocked_user_id = m.sender_user_id)
               AND NOT m.is_deleted) un
     WHERE c.last_message_at > now() - make_interval(secs => %(lookback_seconds)s)
       AND un.unread > 0
       AND un.oldest <= now() - make_interval(secs => %(delay_seconds)s)
       AND (d.last_digest_at IS NULL
            OR d.last_digest_at <= now() - make_interval(secs => %(interval_seconds)s))
), marked AS (
    INSERT INTO chat_digest_marks AS d (conversation_id, user_id, last_message_id, last_digest_at)
    SELECT conversation_id, user_id, last_message_id, now() FROM candidates
    ON CONFLICT (conversation_id, user_id) DO UPDATE
       SET last_message_id = EXCLUDED.last_message_id, last_digest_at = EXCLUDED.last_digest_at
     WHERE d.last_digest_at <= now() - make_interval(secs => %(interval_seconds)s)
       AND d.last_message_id < EXCLUDED.last_message_id
    RETURNING d.conversation_id, d.user_id, d.last_message_id
)
INSERT INTO email_outbox (kind, user_id, data, dedupe_key)
SELECT 'chat_digest', k.user_id,
       jsonb_build_object('conversation_id', k.conversation_id, 'unread', c.unread,
                          'senders', to_jsonb(c.senders), 'last_message_id', k.last_message_id),
       'chat_digest:' || k.conversation_id || ':' || k.user_id || ':' || k.last_message_id
  FROM marked k
  JOIN candidates c ON c.conversation_id = k.conversation_id AND c.user_id = k.user_id
ON CONFLICT ON CONSTRAINT email_outbox_dedupe_key DO NOTHING;

-- name: email_preferences
-- The kinds the caller turned off (email_opt_outs' primary key).
SELECT kind FROM email_opt_outs WHERE user_id = %(user_id)s;

-- name: email_set_preferences
-- Turns kinds off (`off`) and on (`on`) in one statement; turning off twice keeps one row.
WITH turned_on AS (
    DELETE FROM email_opt_outs
     WHERE user_id = %(user_id)s AND kind = ANY (%(on)s::text[])
)
INSERT INTO email_opt_outs (user_id, kind)
SELECT %(user_id)s, k FROM unnest(%(off)s::text[]) AS k
ON CONFLICT (user_id, kind) DO NOTHING;

-- name: email_purge
-- Sent and skipped rows are kept for a while as the record of what was mailed, then go
-- (email_outbox_done_idx); dead rows stay until an operator deals with them.
DELETE FROM email_outbox
 WHERE status IN ('sent', 'skipped') AND created_at < now() - make_interval(secs => %(keep_seconds)s);
