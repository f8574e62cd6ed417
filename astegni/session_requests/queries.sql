-- Session requests: create, lists, lifecycle transitions, idempotency keys, the expiry sweep.
-- Names start with sr_: prepared statements share one namespace per connection.
-- The writes are the PL/pgSQL functions of functions.sql (session_request_*), one call each;
-- the lists read the session_request_details view (names joined, effective status).

-- name: sr_create
-- The whole POST in one round trip; see session_request_create in functions.sql.
SELECT outcome, request_id, conversation_id, message_id, created_at, timezone, retry_after,
       events
  FROM session_request_create(
       %(user_id)s, %(role)s, %(tutor_id)s, %(package_id)s, %(requested_to_id)s, %(message)s,
       %(schedule_type)s, %(days)s::text[], %(specific_dates)s::date[], %(start_time)s::time,
       %(end_time)s::time, %(timezone)s, %(counter_offer_price)s::numeric,
       %(preferred_schedule)s, %(year_range)s::int[], %(months)s::text[], %(num_students)s,
       %(expiry_seconds)s::float8, %(rate_limit)s);

-- name: sr_claim_idempotency_key
-- Claims (user, key) for this request. A concurrent retry with the same key waits here until
-- the first transaction commits, then gets no row and reads the stored response. A key older
-- than 24 hours is taken over as new.
INSERT INTO idempotency_keys AS k (user_id, key, request_hash)
VALUES (%(user_id)s, %(key)s, %(request_hash)s)
ON CONFLICT (user_id, key) DO UPDATE
   SET request_hash = EXCLUDED.request_hash, status_code = NULL, response = NULL,
       created_at = now()
 WHERE k.created_at <= now() - interval '24 hours'
RETURNING true AS claimed;

-- name: sr_stored_idempotency_key
-- The stored answer, and whether its user is still active: a deactivated user gets no replay.
SELECT k.request_hash, k.status_code, k.response, u.is_active AS user_active
  FROM idempotency_keys k
  JOIN users u ON u.id = k.user_id
 WHERE k.user_id = %(user_id)s AND k.key = %(key)s;

-- name: sr_store_idempotency_response
UPDATE idempotency_keys
   SET status_code = %(status_code)s, response = %(response)s::jsonb
 WHERE user_id = %(user_id)s AND key = %(key)s;

-- name: sr_my_requests
-- my-requests: the requests the caller sent (by users.id, whatever the role) and those sent for
-- the caller as the learner by someone else (a parent for their child), newest first, keyset
-- below `before`. One index scan per kind, merged by id: requested_sessions_requester_idx
-- (requester_id, id DESC) and requested_sessions_learner_idx (requested_to_id, id DESC); each
-- branch stops after `limit` rows. The second branch leaves out the caller's own requests (a
-- student booking for themselves), which the first already has.
SELECT page.*,
       json_build_object('user_id', page.requester_id, 'name', page.requester_name) AS requester,
       json_build_object('student_id', page.requested_to_id, 'user_id', learner.user_id,
                         'name', page.requested_to_name) AS learner
  FROM ((SELECT *
           FROM session_request_details
          WHERE requester_id = %(user_id)s
            AND id < %(before)s
            AND (%(tutor_id)s::int IS NULL OR tutor_id = %(tutor_id)s::int)
            AND (%(status)s::text IS NULL OR status = %(status)s::text)
          ORDER BY id DESC
          LIMIT %(limit)s)
        UNION ALL
        (SELECT *
           FROM session_request_details
          WHERE requested_to_id = %(student_id)s::int
            AND requester_id <> %(user_id)s
            AND id < %(before)s
            AND (%(tutor_id)s::int IS NULL OR tutor_id = %(tutor_id)s::int)
            AND (%(status)s::text IS NULL OR status = %(status)s::text)
          ORDER BY id DESC
          LIMIT %(limit)s)
        ORDER BY id DESC
        LIMIT %(limit)s) page
  JOIN student_profiles learner ON learner.id = page.requested_to_id
 ORDER BY page.id DESC;

-- name: sr_tutor_page
-- The tutor's incoming requests: requested_sessions_tutor_idx, newest first.
SELECT *
  FROM session_request_details
 WHERE tutor_id = %(tutor_id)s
   AND id < %(before)s
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- name: sr_tutor_request
SELECT * FROM session_request_details WHERE id = %(id)s AND tutor_id = %(tutor_id)s;

-- name: sr_request_history
-- A request's transitions, oldest first (session_request_events_request_idx).
SELECT e.from_status, e.to_status, e.actor_user_id,
       u.first_name || ' ' || u.father_name AS actor_name, e.reason, e.created_at
  FROM session_request_events e
  LEFT JOIN users u ON u.id = e.actor_user_id
 WHERE e.request_id = %(id)s
 ORDER BY e.id;

-- name: sr_transition
-- One conditional UPDATE (see session_request_transition): no row when the request is not the
-- caller's or no longer pending.
SELECT request_id, status, responded_at, agreed_price, already_enrolled, events
  FROM session_request_transition(%(id)s, %(to)s, %(actor)s, %(reason)s, %(tutor_id)s::int,
                                  %(requester_id)s::int);

-- name: sr_request_state
-- Why a transition found no row: who the request belongs to and its effective status.
SELECT id, tutor_id, requester_id, requested_to_id,
       CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END
           AS status
  FROM requested_sessions
 WHERE id = %(id)s;

-- name: sr_my_students
-- The tutor's enrolled students, newest first (enrolled_students_tutor_idx).
SELECT e.id, e.student_id, su.id AS student_user_id,
       su.first_name || ' ' || su.father_name AS student_name, sp.grade_level,
       e.package_id, p.name AS package_name, e.agreed_price, e.session_request_id, e.enrolled_at
  FROM enrolled_students e
  JOIN student_profiles sp ON sp.id = e.student_id
  JOIN users su ON su.id = sp.user_id
  JOIN tutor_packages p ON p.id = e.package_id
 WHERE e.tutor_id = %(tutor_id)s
   AND e.id < %(before)s
 ORDER BY e.id DESC
 LIMIT %(limit)s;

-- name: sr_expire_due
-- One batch of the expiry sweep (SKIP LOCKED: safe with several server processes).
SELECT expired, events FROM session_request_expire_due(%(limit)s);

-- name: sr_purge_idempotency_keys
DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours';
