-- Session requests: the create, the transitions, the expiry sweep and the list view.

-- The create and every lifecycle transition are PL/pgSQL functions so that each is one round
-- trip with plans cached per connection (planning dominated our short statements). Each runs in
-- the caller's transaction; the Python side is astegni/session_requests/service.py.

-- What every transition of a request does besides its UPDATE: the history row, the request
-- card's status in its chat message, a system message in the conversation, and the events it
-- returns for the caller to send after the commit (message.updated for the card, message.created
-- for the notice, session_request.updated; none to a user who blocks the actor).
CREATE OR REPLACE FUNCTION session_request_changed(
    r requested_sessions, p_from text, p_actor integer, p_reason text)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_events text[] := '{}';
    v_tutor_user integer;
    v_package text;
    v_users integer[];
    v_card chat_messages;
    v_notice chat_messages;
    v_text text;
BEGIN
    INSERT INTO session_request_events (request_id, from_status, to_status, actor_user_id, reason)
    VALUES (r.id, p_from, r.status, p_actor, p_reason);
    PERFORM email_enqueue_request_update(r);  -- the emails of this transition (outbox)

    SELECT t.user_id, p.name INTO v_tutor_user, v_package
      FROM tutor_profiles t, tutor_packages p
     WHERE t.id = r.tutor_id AND p.id = r.package_id;
    v_users := ARRAY[r.requester_id, v_tutor_user];

    IF r.message_id IS NOT NULL THEN
        UPDATE chat_messages
           SET media_metadata = coalesce(media_metadata, '{}'::jsonb) || jsonb_build_object(
                   'status', r.status, 'responded_at', r.responded_at,
                   'rejected_reason', r.rejected_reason),
               updated_at = now()
         WHERE id = r.message_id
        RETURNING * INTO v_card;
        IF FOUND THEN
            v_events := v_events || realtime_event('message.updated', v_users, jsonb_build_object(
                'conversation_id', v_card.conversation_id,
                'message', chat_message_json(v_card,
                    (SELECT first_name || ' ' || father_name FROM users
                      WHERE id = v_card.sender_user_id))), p_actor);
        END IF;
    END IF;

    IF r.conversation_id IS NOT NULL THEN
        v_text := format('Session request for %s ', coalesce(v_package, 'a package'))
            || CASE r.status
                   WHEN 'accepted' THEN 'was accepted.'
                   WHEN 'rejected' THEN 'was declined.'
                       || coalesce(' Reason: ' || nullif(r.rejected_reason, ''), '')
                   WHEN 'cancelled' THEN 'was cancelled.'
                   WHEN 'expired' THEN 'expired without a response.'
                   ELSE format('is now %s.', r.status)
               END;
        INSERT INTO chat_messages (conversation_id, sender_user_id, message_type, content,
                                   media_metadata)
        VALUES (r.conversation_id, p_actor, 'system', v_text,
                jsonb_build_object('session_request_id', r.id, 'status', r.status,
                                   'from_status', p_from, 'reason', p_reason))
        RETURNING * INTO v_notice;
        UPDATE conversations
           SET last_message_at = greatest(last_message_at, v_notice.created_at), updated_at = now()
         WHERE id = r.conversation_id;
        v_events := v_events || realtime_event('message.created', v_users, jsonb_build_object(
            'conversation_id', v_notice.conversation_id,
            'message', chat_message_json(v_notice,
                (SELECT first_name || ' ' || father_name FROM users WHERE id = p_actor))), p_actor);
    END IF;

    RETURN v_events || realtime_event('session_request.updated', v_users, jsonb_build_object(
        'id', r.id, 'status', r.status, 'from_status', p_from, 'actor_user_id', p_actor,
        'reason', p_reason, 'tutor_id', r.tutor_id, 'package_id', r.package_id,
        'requester_id', r.requester_id, 'requested_to_id', r.requested_to_id,
        'conversation_id', r.conversation_id, 'message_id', r.message_id,
        'rejected_reason', r.rejected_reason, 'responded_at', r.responded_at,
        'updated_at', r.updated_at), p_actor);
END $$;

-- Moves one pending, unexpired request to p_to ('accepted', 'rejected' or 'cancelled') in one
-- conditional UPDATE: of two racing answers exactly one gets a row back. p_tutor_id /
-- p_requester_id (when given) restrict it to that tutor's or that requester's request.
-- Accepting enrols the student at the counter-offer, else the request's package_price (never
-- the package's rate of today). A student already enrolled in the package (an earlier request
-- was accepted) keeps that first enrolment and its price: agreed_price is then the price in
-- force and already_enrolled is true, so that nothing is overwritten silently.
-- No row: not found, not the caller's, or no longer pending. `events` are for the caller to send
-- after the commit.
CREATE OR REPLACE FUNCTION session_request_transition(
    p_request_id integer, p_to text, p_actor integer, p_reason text,
    p_tutor_id integer, p_requester_id integer)
RETURNS TABLE (request_id integer, status text, responded_at timestamptz, agreed_price numeric,
               already_enrolled boolean, events text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r requested_sessions;
    v_price numeric;
    v_already boolean;
BEGIN
    IF p_to NOT IN ('accepted', 'rejected', 'cancelled') THEN
        RAISE EXCEPTION 'invalid transition to %', p_to;
    END IF;
    UPDATE requested_sessions s
       SET status = p_to,
           rejected_reason = CASE WHEN p_to = 'rejected' THEN p_reason END,
           responded_at = CASE WHEN p_to IN ('accepted', 'rejected') THEN now() END,
           responded_by_user_id = CASE WHEN p_to IN ('accepted', 'rejected') THEN p_actor END,
           updated_at = now()
     WHERE s.id = p_request_id AND s.status = 'pending' AND s.expires_at > now()
       AND (p_tutor_id IS NULL OR s.tutor_id = p_tutor_id)
       AND (p_requester_id IS NULL OR s.requester_id = p_requester_id)
    RETURNING s.* INTO r;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_to = 'accepted' THEN
        INSERT INTO enrolled_students AS e (tutor_id, student_id, package_id, session_request_id,
                                            agreed_price)
        VALUES (r.tutor_id, r.requested_to_id, r.package_id, r.id,
                coalesce(r.counter_offer_price, r.package_price))
        ON CONFLICT (tutor_id, student_id, package_id) DO NOTHING
        RETURNING e.agreed_price INTO v_price;
        v_already := NOT FOUND;
        IF v_already THEN
            SELECT e.agreed_price INTO v_price
              FROM enrolled_students e
             WHERE e.tutor_id = r.tutor_id AND e.student_id = r.requested_to_id
               AND e.package_id = r.package_id;
        END IF;
    END IF;
    RETURN QUERY SELECT r.id, r.status, r.responded_at, v_price, v_already,
                        session_request_changed(r, 'pending', p_actor, p_reason);
END $$;

-- The expiry sweep: up to p_limit pending requests past expires_at become 'expired' (SKIP
-- LOCKED: several server processes may sweep at once). Returns how many it expired, and the
-- events for the caller to send after the commit.
CREATE OR REPLACE FUNCTION session_request_expire_due(p_limit integer, OUT expired integer,
                                                      OUT events text[])
LANGUAGE plpgsql AS $$
DECLARE
    r requested_sessions;
BEGIN
    expired := 0;
    events := '{}';
    FOR r IN
        UPDATE requested_sessions s SET status = 'expired', updated_at = now()
         WHERE s.id IN (SELECT id FROM requested_sessions
                         WHERE status = 'pending' AND expires_at <= now()
                         ORDER BY expires_at LIMIT p_limit
                         FOR UPDATE SKIP LOCKED)
        RETURNING s.*
    LOOP
        events := events || session_request_changed(r, 'pending', NULL, 'Expired without a response');
        expired := expired + 1;
    END LOOP;
END $$;

-- The pending request of a learner and package that is past its expiry, which the sweep has not
-- reached yet, expires now (freeing the slot of requested_sessions_one_pending_learner_key);
-- returns the events of that transition.
CREATE OR REPLACE FUNCTION session_request_expire_stale(p_learner_id integer, p_package_id integer)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_events text[] := '{}';
    r requested_sessions;
BEGIN
    FOR r IN
        UPDATE requested_sessions s SET status = 'expired', updated_at = now()
         WHERE s.requested_to_id = p_learner_id AND s.package_id = p_package_id
           AND s.status = 'pending' AND s.expires_at <= now()
        RETURNING s.*
    LOOP
        v_events := v_events || session_request_changed(r, 'pending', NULL,
                                                         'Expired without a response');
    END LOOP;
    RETURN v_events;
END $$;

-- Who a session request of the caller is for: a student requests for themselves, a parent for
-- one of their children (p_requested_to_id). The caller is read through user_principal (an active
-- user, acting in a role they hold). Always one row; `refusal` is why the caller cannot request
-- (an outcome of session_request_create), NULL when learner_id is set. The one place where the
-- create decides by role.
CREATE OR REPLACE FUNCTION session_request_learner(
    p_user_id integer, p_role text, p_requested_to_id integer)
RETURNS TABLE (role text, requester_name text, learner_id integer, learner_name text,
               refusal text)
LANGUAGE sql STABLE AS $$
    SELECT pr.role, pr.first_name || ' ' || pr.father_name,
           CASE pr.role WHEN 'student' THEN pr.student_id WHEN 'parent' THEN pc.student_id END,
           CASE pr.role WHEN 'student' THEN pr.first_name || ' ' || pr.father_name
                        WHEN 'parent' THEN cu.first_name || ' ' || cu.father_name END,
           CASE pr.role
               WHEN 'student' THEN CASE WHEN pr.student_id IS NULL THEN 'no_student_profile' END
               WHEN 'parent' THEN CASE WHEN pr.parent_id IS NULL THEN 'no_parent_profile'
                                       WHEN p_requested_to_id IS NULL THEN 'requested_to_required'
                                       WHEN pc.student_id IS NULL THEN 'not_your_child' END
               ELSE CASE WHEN pr.role IS NULL THEN 'unauthorized' ELSE 'forbidden_role' END
           END
      FROM (SELECT) AS one
      LEFT JOIN user_principal(p_user_id, p_role) pr ON true
      LEFT JOIN parent_children pc ON pc.parent_id = pr.parent_id
                                  AND pc.student_id = p_requested_to_id
      LEFT JOIN student_profiles cs ON cs.id = pc.student_id
      LEFT JOIN users cu ON cu.id = cs.user_id
$$;

-- The tutor and the package a session request of p_user_id names: the tutor an active user who
-- holds the tutor role (user_principal) and has not blocked the requester (user_blocks' primary
-- key), the package theirs and active. Always one row; `refusal` is why the request cannot go
-- to them (an outcome of session_request_create), NULL when it can.
CREATE OR REPLACE FUNCTION session_request_target(
    p_user_id integer, p_tutor_id integer, p_package_id integer)
RETURNS TABLE (tutor_user_id integer, tutor_name text, package_name text, hourly_rate numeric,
               refusal text)
LANGUAGE sql STABLE AS $$
    SELECT tp.id, tp.first_name || ' ' || tp.father_name, pk.name, pk.hourly_rate,
           CASE WHEN tp.id IS NULL THEN 'tutor_not_found'
                WHEN tp.id = p_user_id THEN 'own_tutor_profile'
                WHEN EXISTS (SELECT 1 FROM user_blocks b
                              WHERE b.blocker_user_id = tp.id AND b.blocked_user_id = p_user_id)
                THEN 'blocked'
                WHEN pk.id IS NULL THEN 'package_not_found'
           END
      FROM (SELECT) AS one
      LEFT JOIN tutor_profiles t ON t.id = p_tutor_id
      LEFT JOIN LATERAL user_principal(t.user_id, 'tutor') tp ON tp.tutor_id = t.id
      LEFT JOIN tutor_packages pk
             ON pk.id = p_package_id AND pk.tutor_id = tp.tutor_id AND pk.is_active
$$;

-- The card of a new request: its session_request message's media_metadata.
CREATE OR REPLACE FUNCTION session_request_card(
    r requested_sessions, p_tutor_name text, p_package_name text, p_requester_name text,
    p_learner_name text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'session_request_id', r.id, 'status', r.status,
        'tutor_id', r.tutor_id, 'tutor_name', p_tutor_name,
        'package_id', r.package_id, 'package_name', p_package_name,
        'hourly_rate', r.package_price, 'package_price', r.package_price,
        'requester_id', r.requester_id, 'requester_name', p_requester_name,
        'requester_type', r.requester_type,
        'requested_to_id', r.requested_to_id, 'requested_to_name', p_learner_name,
        'schedule_type', r.schedule_type, 'days', to_jsonb(r.days),
        'specific_dates', to_jsonb(r.specific_dates),
        'start_time', to_char(r.start_time, 'HH24:MI'),
        'end_time', to_char(r.end_time, 'HH24:MI'),
        'preferred_schedule', r.preferred_schedule,
        'year_range', to_jsonb(r.year_range), 'months', to_jsonb(r.months),
        'num_students', r.num_students,
        'timezone', r.timezone, 'counter_offer_price', r.counter_offer_price,
        'message', r.message, 'expires_at', r.expires_at)
$$;

-- POST /api/session-requests in one call: who requests for whom (session_request_learner), the
-- rate limit (rate_limit_hit, bucket 'session_request'; a caller who may not request at all is
-- answered before it counts), the tutor and package (session_request_target), the pair's direct
-- conversation, then the request and its card in one INSERT ... ON CONFLICT on
-- requested_sessions_one_pending_learner_key. `outcome` says which way it went; nothing but the
-- rate-limit counter is written unless it is 'created' (or, for a legacy pending request whose
-- pair had no conversation yet, the conversation a retry would open anyway). A duplicate is
-- 'duplicate' when the caller sent the pending request, 'duplicate_other' when someone else did
-- for the same learner (a parent for their child, or the child).
-- Its events (message.created, and those of a stale request it expired) come back as `events`,
-- for the caller to send after the commit (astegni/core/events.py).
CREATE OR REPLACE FUNCTION session_request_create(
    p_user_id integer, p_role text, p_tutor_id integer, p_package_id integer,
    p_requested_to_id integer, p_message text, p_schedule_type text, p_days text[],
    p_specific_dates date[], p_start_time time, p_end_time time, p_timezone text,
    p_counter_offer_price numeric, p_preferred_schedule text, p_year_range integer[],
    p_months text[], p_num_students integer, p_expiry_seconds double precision,
    p_rate_limit integer)
RETURNS TABLE (outcome text, request_id integer, conversation_id integer, message_id bigint,
               created_at timestamptz, timezone text, retry_after integer, events text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_who record;
    v_target record;
    v_owner integer;
    v_conversation integer;
    v_request integer;
    v_message bigint;
    m chat_messages;
BEGIN
    SELECT * INTO v_who FROM session_request_learner(p_user_id, p_role, p_requested_to_id);
    outcome := v_who.refusal;
    IF outcome IN ('unauthorized', 'forbidden_role') THEN
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_rate_limit > 0 THEN
        retry_after := nullif(rate_limit_hit('session_request', p_user_id::text, p_rate_limit, 60), 0);
        IF retry_after IS NOT NULL THEN
            outcome := 'rate_limited';
        END IF;
    END IF;
    IF outcome IS NULL THEN
        SELECT * INTO v_target FROM session_request_target(p_user_id, p_tutor_id, p_package_id);
        outcome := v_target.refusal;
    END IF;
    IF outcome IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;

    -- The conversation comes first and both ids are drawn up front, so that the request row is
    -- written once, complete, in the same statement as its message (no second version of every
    -- new request row, nor the foreign key checks of an UPDATE). A duplicate finds the
    -- conversation its pending request opened and writes nothing; the ids it drew stay unused.
    SELECT g.conversation_id INTO v_conversation
      FROM direct_conversation_get_or_create(p_user_id, p_user_id, v_target.tutor_user_id) g;
    v_request := nextval(pg_get_serial_sequence('requested_sessions', 'id'));
    v_message := nextval(pg_get_serial_sequence('chat_messages', 'id'));

    -- Each statement of a function takes a new snapshot (READ COMMITTED): when the INSERT meets
    -- a pending row committed by a concurrent transaction, the SELECT after it sees that row.
    -- Should that row have left 'pending' in between, the loop simply tries again.
    FOR attempt IN 1..5 LOOP
        WITH req AS (
            INSERT INTO requested_sessions AS s (
                id, tutor_id, package_id, requester_id, requester_type, requested_to_id, message,
                schedule_type, days, specific_dates, start_time, end_time, timezone,
                preferred_schedule, year_range, months, num_students, counter_offer_price,
                package_price, expires_at, conversation_id, message_id)
            VALUES (v_request, p_tutor_id, p_package_id, p_user_id, v_who.role, v_who.learner_id,
                    p_message, p_schedule_type, coalesce(p_days, '{}'),
                    coalesce(p_specific_dates, '{}'), p_start_time, p_end_time, p_timezone,
                    p_preferred_schedule, coalesce(p_year_range, '{}'), coalesce(p_months, '{}'),
                    coalesce(p_num_students, 1), p_counter_offer_price, v_target.hourly_rate,
                    now() + make_interval(secs => p_expiry_seconds), v_conversation, v_message)
            ON CONFLICT (requested_to_id, package_id) WHERE status = 'pending' DO NOTHING
            RETURNING s AS r)
        INSERT INTO chat_messages AS cm (id, conversation_id, sender_user_id, message_type, content,
                                         media_metadata)
        SELECT v_message, v_conversation, p_user_id, 'session_request',
               coalesce(p_message, 'Session request: ' || v_target.package_name),
               session_request_card(req.r, v_target.tutor_name, v_target.package_name,
                                    v_who.requester_name, v_who.learner_name)
          FROM req
        RETURNING cm.* INTO m;
        EXIT WHEN FOUND;

        SELECT s.id, s.created_at, s.timezone, s.requester_id
          INTO request_id, created_at, timezone, v_owner
          FROM requested_sessions s
         WHERE s.requested_to_id = v_who.learner_id AND s.package_id = p_package_id
           AND s.status = 'pending' AND s.expires_at > now();
        IF FOUND THEN
            outcome := CASE WHEN v_owner = p_user_id THEN 'duplicate' ELSE 'duplicate_other' END;
            RETURN NEXT;
            RETURN;
        END IF;

        -- The pending row is past its expiry, and the sweep has not reached it yet: no request
        -- is pending past its expiry, so it expires now and frees the slot. (Done here rather
        -- than before the INSERT: most creates meet no pending row at all.)
        events := events || session_request_expire_stale(v_who.learner_id, p_package_id);
        IF attempt = 5 THEN
            RAISE EXCEPTION 'session request key kept changing under concurrent updates'
                USING ERRCODE = 'serialization_failure';
        END IF;
    END LOOP;

    UPDATE conversations
       SET last_message_at = greatest(last_message_at, m.created_at), updated_at = now()
     WHERE id = m.conversation_id;

    -- The tutor's email of the new request, in the outbox (sent after this commits).
    PERFORM email_enqueue('request_created', ARRAY[v_target.tutor_user_id], v_request::text,
        jsonb_build_object('request_id', v_request, 'package_name', v_target.package_name,
                           'requester_name', v_who.requester_name,
                           'learner_name', v_who.learner_name, 'requester_type', v_who.role,
                           'message', p_message, 'counter_offer_price', p_counter_offer_price,
                           'hourly_rate', v_target.hourly_rate, 'created_at', m.created_at));

    outcome := 'created';
    request_id := v_request;
    conversation_id := v_conversation;
    message_id := m.id;
    created_at := m.created_at;  -- the request's too: both are now(), the transaction's start
    timezone := p_timezone;
    events := events || realtime_event('message.created', ARRAY[p_user_id, v_target.tutor_user_id],
        jsonb_build_object('conversation_id', m.conversation_id,
                           'message', chat_message_json(m, v_who.requester_name)));
    RETURN NEXT;
END $$;

-- A request as the API lists it: names joined, and the effective status ('expired' for a
-- pending request past expires_at, whether or not the sweep has reached it yet).
CREATE OR REPLACE VIEW session_request_details AS
SELECT r.id, r.tutor_id, tu.first_name || ' ' || tu.father_name AS tutor_name,
       t.user_id AS tutor_user_id, r.package_id, p.name AS package_name, p.hourly_rate,
       r.requester_id, r.requester_type, ru.first_name || ' ' || ru.father_name AS requester_name,
       r.requested_to_id, su.first_name || ' ' || su.father_name AS requested_to_name,
       r.message, r.schedule_type, r.days, r.specific_dates,
       to_char(r.start_time, 'HH24:MI') AS start_time, to_char(r.end_time, 'HH24:MI') AS end_time,
       r.timezone, r.counter_offer_price,
       CASE WHEN r.status = 'pending' AND r.expires_at <= now() THEN 'expired'
            ELSE r.status END AS status,
       r.rejected_reason, r.conversation_id, r.message_id, r.created_at, r.expires_at,
       r.responded_at, r.updated_at, r.package_price, r.preferred_schedule, r.year_range,
       r.months, r.num_students
  FROM requested_sessions r
  JOIN tutor_profiles t ON t.id = r.tutor_id
  JOIN users tu ON tu.id = t.user_id
  JOIN tutor_packages p ON p.id = r.package_id
  JOIN users ru ON ru.id = r.requester_id
  JOIN student_profiles sp ON sp.id = r.requested_to_id
  JOIN users su ON su.id = sp.user_id;
