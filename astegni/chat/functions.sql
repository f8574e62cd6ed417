-- Chat: who may reach whom, the direct conversation of a pair, the message JSON and the
-- real-time events.

-- Whether p_user may reach p_other in the chat (start a conversation with them): p_other is a
-- tutor (tutors are public), p_user's child or parent, on one session request with p_user (each
-- as its requester, its learner or its tutor), or already in a direct conversation with p_user.
-- Activity and blocks are the callers' to check. Indexes: users_pkey; parent_children_pkey and
-- parent_children_student_idx; requested_sessions_requester_idx, then tutor_profiles_user_id_key
-- and requested_sessions_tutor_idx (one of the pair is the requester or the tutor of any request
-- they share); conversations_direct_pair_key.
-- PL/pgSQL rather than SQL: its plan is cached per connection, where a SQL function that is not
-- inlined is planned again at every call.
CREATE OR REPLACE FUNCTION chat_reachable(p_user integer, p_other integer)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM users u WHERE u.id = p_other AND 'tutor' = ANY (u.roles))
        OR EXISTS (SELECT 1
                     FROM parent_profiles pp
                     JOIN parent_children pc ON pc.parent_id = pp.id
                     JOIN student_profiles sp ON sp.id = pc.student_id AND sp.user_id = p_other
                    WHERE pp.user_id = p_user)
        OR EXISTS (SELECT 1
                     FROM student_profiles sp
                     JOIN parent_children pc ON pc.student_id = sp.id
                     JOIN parent_profiles pp ON pp.id = pc.parent_id AND pp.user_id = p_other
                    WHERE sp.user_id = p_user)
        OR EXISTS (SELECT 1
                     FROM requested_sessions r
                     JOIN tutor_profiles t ON t.id = r.tutor_id
                     JOIN student_profiles s ON s.id = r.requested_to_id
                    WHERE r.requester_id IN (p_user, p_other)
                      AND p_user IN (r.requester_id, s.user_id, t.user_id)
                      AND p_other IN (r.requester_id, s.user_id, t.user_id))
        -- The same request test again, entered by the tutor's index: folded into the branch above
        -- (requester OR tutor), PostgreSQL still reads both indexes (a BitmapOr) but misjudges
        -- the rows and joins the profiles by sequential scans, 8 to 20 times slower with 150,000
        -- requests.
        OR EXISTS (SELECT 1
                     FROM tutor_profiles t
                     JOIN requested_sessions r ON r.tutor_id = t.id
                     JOIN student_profiles s ON s.id = r.requested_to_id
                    WHERE t.user_id IN (p_user, p_other)
                      AND p_user IN (r.requester_id, s.user_id, t.user_id)
                      AND p_other IN (r.requester_id, s.user_id, t.user_id))
        OR EXISTS (SELECT 1 FROM conversations c
                    WHERE c.direct_user_low = least(p_user, p_other)
                      AND c.direct_user_high = greatest(p_user, p_other));
END $$;

-- The pair's direct conversation, created if there is none: the one source for
-- conversation_get_or_create_direct (astegni/chat/queries.sql) and session_request_create. Looked
-- up first: most calls find it, and a lookup writes nothing, where an upsert (ON CONFLICT DO
-- UPDATE, to get RETURNING) would write a new version of the row every time. The UNIQUE pair key
-- still decides a race: an INSERT that meets a row committed after this statement's snapshot
-- does nothing, and the next lookup (a new snapshot) finds that row.
CREATE OR REPLACE FUNCTION direct_conversation_get_or_create(
    p_creator_id integer, p_user_a integer, p_user_b integer)
RETURNS TABLE (conversation_id integer, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    FOR attempt IN 1..3 LOOP
        SELECT c.id, false INTO conversation_id, created
          FROM conversations c
         WHERE c.direct_user_low = least(p_user_a, p_user_b)
           AND c.direct_user_high = greatest(p_user_a, p_user_b);
        EXIT WHEN FOUND;
        INSERT INTO conversations AS c (type, created_by_user_id, direct_user_low, direct_user_high)
        VALUES ('direct', p_creator_id, least(p_user_a, p_user_b), greatest(p_user_a, p_user_b))
        ON CONFLICT (direct_user_low, direct_user_high) DO NOTHING
        RETURNING c.id, true INTO conversation_id, created;
        EXIT WHEN FOUND;
        IF attempt = 3 THEN  -- created and deleted again under us, twice over
            RAISE EXCEPTION 'direct conversation kept changing under concurrent updates'
                USING ERRCODE = 'serialization_failure';
        END IF;
    END LOOP;
    -- A direct conversation gets its two participants in the transaction that creates it, and
    -- the migration keys only conversations whose participants are exactly the pair: one found
    -- by its pair key has them already.
    IF created THEN
        INSERT INTO conversation_participants (conversation_id, user_id)
        VALUES (conversation_id, p_user_a), (conversation_id, p_user_b);
    END IF;
    RETURN NEXT;
END $$;

-- A chat message as the API shows it: the SQL twin of message_json in astegni/chat/format.py (a
-- test keeps the two equal).
CREATE OR REPLACE FUNCTION chat_message_json(m chat_messages, p_sender_name text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', m.id, 'conversation_id', m.conversation_id, 'sender_user_id', m.sender_user_id,
        'sender_name', p_sender_name, 'message_type', m.message_type,
        'content', CASE WHEN m.is_deleted THEN NULL ELSE m.content END,
        'media_metadata', CASE WHEN m.is_deleted THEN NULL ELSE m.media_metadata END,
        'reply_to_id', m.reply_to_id, 'client_message_id', m.client_message_id,
        'is_deleted', m.is_deleted, 'edited_at', m.edited_at, 'created_at', m.created_at)
$$;
