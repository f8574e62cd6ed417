-- What every domain's writes share: the rate limiter and the real-time event envelope.

-- One hit against a rate limit, counted before the action it guards, in one statement so that
-- parallel hits cannot all slip under the limit. Returns 0 when the hit is allowed, else the
-- seconds until the window ends (the Retry-After). A hit counts once its transaction commits.
CREATE OR REPLACE FUNCTION rate_limit_hit(
    p_bucket text, p_subject text, p_limit integer, p_window_seconds integer)
RETURNS integer
LANGUAGE sql AS $$
    INSERT INTO rate_limits AS c (bucket, subject, window_start, hits)
    VALUES (p_bucket, p_subject, now(), 1)
    ON CONFLICT (bucket, subject) DO UPDATE
       SET hits = CASE WHEN c.window_start > now() - make_interval(secs => p_window_seconds)
                       THEN c.hits + 1 ELSE 1 END,
           window_start = CASE WHEN c.window_start > now() - make_interval(secs => p_window_seconds)
                               THEN c.window_start ELSE now() END
    RETURNING CASE WHEN c.hits <= p_limit THEN 0
                   ELSE greatest(1, ceil(extract(epoch FROM c.window_start
                            + make_interval(secs => p_window_seconds) - now())))::integer
              END
$$;

-- A real-time event's NOTIFY payload, for p_user_ids less those who block p_actor (the user
-- whose write caused the event; NULL: the system). astegni.core.events.publish and the session
-- request functions build their events with it: one envelope, one recipient rule, and the
-- by-reference fallback for payloads over 7000 bytes (stored in this transaction).
-- user_blocks_pkey answers each "does u block the actor".
CREATE OR REPLACE FUNCTION realtime_event(
    p_type text, p_user_ids integer[], p_data jsonb, p_actor integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_payload text;
    v_ref bigint;
BEGIN
    v_payload := jsonb_build_object(
        'type', p_type,
        'user_ids', (SELECT coalesce(jsonb_agg(DISTINCT u ORDER BY u), '[]')
                       FROM unnest(p_user_ids) AS u
                      WHERE u IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM user_blocks b
                                         WHERE b.blocker_user_id = u
                                           AND b.blocked_user_id = p_actor)),
        'data', p_data)::text;
    IF octet_length(v_payload) > 7000 THEN
        INSERT INTO realtime_events (payload) VALUES (v_payload::jsonb) RETURNING id INTO v_ref;
        v_payload := jsonb_build_object('ref', v_ref)::text;
    END IF;
    RETURN v_payload;
END $$;

-- An event no user caused (or whose cause the caller has already vetted).
CREATE OR REPLACE FUNCTION realtime_event(p_type text, p_user_ids integer[], p_data jsonb)
RETURNS text LANGUAGE sql AS $$
    SELECT realtime_event(p_type, p_user_ids, p_data, NULL)
$$;
