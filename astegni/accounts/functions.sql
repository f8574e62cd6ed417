-- Accounts: login throttling and the caller of every request.

-- One login attempt on one counter, counted in one statement before the password is checked.
-- While the counter is locked the attempt is refused and not counted; past p_limit attempts in
-- the window the counter locks for p_lockout_seconds. Returns 0 when the attempt may proceed,
-- else the seconds until the lockout ends (the Retry-After).
CREATE OR REPLACE FUNCTION login_attempt(
    p_email_key text, p_client text, p_limit integer, p_window_seconds integer,
    p_lockout_seconds integer)
RETURNS integer
LANGUAGE sql AS $$
    INSERT INTO login_attempts AS a (email_key, client, attempts, window_start)
    VALUES (p_email_key, p_client, 1, now())
    ON CONFLICT (email_key, client) DO UPDATE
       SET attempts = CASE WHEN a.locked_until > now() THEN a.attempts
                           WHEN a.window_start > now() - make_interval(secs => p_window_seconds)
                           THEN a.attempts + 1 ELSE 1 END,
           window_start = CASE WHEN a.locked_until > now() THEN a.window_start
                               WHEN a.window_start > now() - make_interval(secs => p_window_seconds)
                               THEN a.window_start ELSE now() END,
           locked_until = CASE WHEN a.locked_until > now() THEN a.locked_until
                               WHEN a.window_start > now() - make_interval(secs => p_window_seconds)
                                    AND a.attempts + 1 > p_limit
                               THEN now() + make_interval(secs => p_lockout_seconds) END
    RETURNING CASE WHEN a.locked_until > now()
                   THEN greatest(1, ceil(extract(epoch FROM a.locked_until - now())))::integer
                   ELSE 0 END
$$;

-- The caller of an authenticated request, as load_principal (astegni/accounts/principal.py) and
-- session_request_create both read it: an active user; `role` is the role acting (the token's,
-- else the active one) while users.roles holds it, else NULL; and the profile id of each role
-- that users.roles holds. A profile row alone grants nothing: an operator revokes a role by
-- taking it out of users.roles, and its profile row (with its history) stays.
-- LANGUAGE sql and STABLE so that PostgreSQL inlines it into the calling query: no extra cost.
CREATE OR REPLACE FUNCTION user_principal(p_user_id integer, p_role text)
RETURNS TABLE (id integer, email text, first_name text, father_name text, roles text[],
               active_role text, role text, student_id integer, parent_id integer,
               tutor_id integer, locale text)
LANGUAGE sql STABLE AS $$
    SELECT u.id, u.email, u.first_name, u.father_name, u.roles, u.active_role,
           CASE WHEN coalesce(p_role, u.active_role) = ANY (u.roles)
                THEN coalesce(p_role, u.active_role) END,
           s.id, p.id, t.id, u.locale
      FROM users u
      LEFT JOIN student_profiles s ON s.user_id = u.id AND 'student' = ANY (u.roles)
      LEFT JOIN parent_profiles p ON p.user_id = u.id AND 'parent' = ANY (u.roles)
      LEFT JOIN tutor_profiles t ON t.user_id = u.id AND 'tutor' = ANY (u.roles)
     WHERE u.id = p_user_id AND u.is_active
$$;
