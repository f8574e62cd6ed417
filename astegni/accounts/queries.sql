-- Accounts and roles.

-- name: principal
-- The caller of every authenticated request: user_principal in repeatable/accounts.sql (shared with the
-- session-request create), profile ids only for the roles users.roles holds.
SELECT * FROM user_principal(%(user_id)s, %(role)s::text);

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
-- The user behind a login attempt (id NULL when there is none).
SELECT u.id, u.password_hash, u.is_active
  FROM (SELECT lower(%(email)s) AS email_key) k
  LEFT JOIN users u ON lower(u.email) = k.email_key;

-- name: switch_role
UPDATE users SET active_role = %(role)s, updated_at = now()
 WHERE id = %(user_id)s AND %(role)s = ANY (roles) AND is_active
RETURNING id;

-- name: set_locale
-- Only the caller's own row: the id comes from the token, never from the body.
UPDATE users SET locale = %(locale)s, updated_at = now()
 WHERE id = %(user_id)s AND is_active
RETURNING locale;
