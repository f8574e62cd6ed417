-- Email notifications: the outbox's enqueue functions.

-- One email per recipient into the outbox, inside the caller's transaction; a key already
-- there inserts nothing (the event was told already). One INSERT: cheap on the create path.
CREATE OR REPLACE FUNCTION email_enqueue(
    p_kind text, p_user_ids integer[], p_subject_key text, p_data jsonb)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO email_outbox (kind, user_id, data, dedupe_key)
    SELECT DISTINCT p_kind, u, p_data, p_kind || ':' || p_subject_key || ':' || u
      FROM unnest(p_user_ids) AS u
     WHERE u IS NOT NULL
    ON CONFLICT ON CONSTRAINT email_outbox_dedupe_key DO NOTHING
$$;

-- The email of a request's transition (accepted, rejected, cancelled, expired): to the
-- requester, and to the learner when that is someone else (a child a parent booked for).
CREATE OR REPLACE FUNCTION email_enqueue_request_update(r requested_sessions)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v record;
BEGIN
    IF r.status NOT IN ('accepted', 'rejected', 'cancelled', 'expired') THEN
        RETURN;
    END IF;
    SELECT sp.user_id AS learner_user_id, su.first_name || ' ' || su.father_name AS learner_name,
           tu.first_name || ' ' || tu.father_name AS tutor_name, p.name AS package_name
      INTO v
      FROM student_profiles sp
      JOIN users su ON su.id = sp.user_id
      JOIN tutor_profiles t ON t.id = r.tutor_id
      JOIN users tu ON tu.id = t.user_id
      JOIN tutor_packages p ON p.id = r.package_id
     WHERE sp.id = r.requested_to_id;
    PERFORM email_enqueue('request_' || r.status, ARRAY[r.requester_id, v.learner_user_id],
        r.id::text, jsonb_build_object(
            'request_id', r.id, 'status', r.status, 'package_name', v.package_name,
            'tutor_name', v.tutor_name, 'learner_name', v.learner_name,
            'learner_user_id', v.learner_user_id, 'requester_id', r.requester_id,
            'rejected_reason', r.rejected_reason, 'created_at', r.created_at,
            'changed_at', now()));
END $$;
