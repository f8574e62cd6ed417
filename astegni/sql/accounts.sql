-- Accounts, roles and login throttling.

-- name: principal
-- The caller of every authenticated request: the user and the profile row of each role.
SELECT u.id, u.email, u.first_name, u.father_name, u.roles, u.active_role, u.locale,
       s.id AS student_id, p.id AS parent_id, t.id AS tutor_id
  FROM users u
  LEFT JOIN student_profiles s ON s.user_id = u.id
  LEFT JOIN parent_profiles p ON p.user_id = u.id
  LEFT JOIN tutor_profiles t ON t.user_id = u.id
 WHERE u.id = %(user_id)s AND u.is_active;

-- name: create_user
-- A user and one profile row per role, in one statement.
WITH u AS (
    INSERT INTO users (email, password_hash, first_name, father_name, grandfather_name, phone,
                       roles, active_role, locale)
    VALUES (%(email)s, %(password_hash)s, %(first_name)s, %(father_name)s,
            %(grandfather_name)s, %(phone)s, %(roles)s::text[], (%(roles)s::text[])[1],
            COALESCE(%(locale)s, 'en'))
    RETURNING id, email, first_name, father_name, roles, active_role, locale
), s AS (
    INSERT INTO student_profiles (user_id, grade_level)
    SELECT id, %(grade_level)s FROM u WHERE 'student' = ANY (roles)
    RETURNING id
), p AS (
    INSERT INTO parent_profiles (user_id) SELECT id FROM u WHERE 'parent' = ANY (roles)
    RETURNING id
), t AS (
    INSERT INTO tutor_profiles (user_id) SELECT id FROM u WHERE 'tutor' = ANY (roles)
    RETURNING id
)
SELECT u.*, (SELECT id FROM s) AS student_id, (SELECT id FROM p) AS parent_id,
       (SELECT id FROM t) AS tutor_id
  FROM u;

-- name: login_candidate
-- The user behind a login attempt, and how long that email is locked out (0 when it is not).
SELECT u.id, u.password_hash, u.is_active,
       greatest(0, ceil(extract(epoch FROM (f.locked_until - now()))))::int AS locked_seconds
  FROM (SELECT lower(%(email)s) AS email_key) k
  LEFT JOIN users u ON lower(u.email) = k.email_key
  LEFT JOIN login_failures f ON f.email_key = k.email_key;

-- name: record_login_failure
-- Count a failure in the current window; lock the email once the count reaches the maximum.
INSERT INTO login_failures AS f (email_key, failures, window_start)
VALUES (lower(%(email)s), 1, now())
ON CONFLICT (email_key) DO UPDATE
   SET failures = CASE WHEN f.window_start > now() - make_interval(secs => %(window_seconds)s)
                       THEN f.failures + 1 ELSE 1 END,
       window_start = CASE WHEN f.window_start > now() - make_interval(secs => %(window_seconds)s)
                           THEN f.window_start ELSE now() END
RETURNING failures;

-- name: lock_login
UPDATE login_failures
   SET locked_until = now() + make_interval(secs => %(lockout_seconds)s), failures = 0,
       window_start = now()
 WHERE email_key = lower(%(email)s);

-- name: clear_login_failures
DELETE FROM login_failures WHERE email_key = lower(%(email)s);

-- name: switch_role
UPDATE users SET active_role = %(role)s, updated_at = now()
 WHERE id = %(user_id)s AND %(role)s = ANY (roles) AND is_active
RETURNING id;

-- name: set_locale
-- Only the caller's own row: the id comes from the token, never from the body.
UPDATE users SET locale = %(locale)s, updated_at = now()
 WHERE id = %(user_id)s AND is_active
RETURNING locale;
