-- Accounts and roles, and parents' children (astegni/accounts/service.py; the principal query:
-- astegni/accounts/principal.py).

-- name: principal
-- The caller of every authenticated request: user_principal in functions.sql (shared with the
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

-- name: children
-- GET /api/parent/children (the primary key of parent_children leads with parent_id).
SELECT s.id, s.user_id, u.first_name || ' ' || u.father_name AS name, s.grade_level
  FROM parent_children pc
  JOIN student_profiles s ON s.id = pc.student_id
  JOIN users u ON u.id = s.user_id AND u.is_active
 WHERE pc.parent_id = %(parent_id)s
 ORDER BY pc.created_at, s.id;

-- name: create_child
-- POST /api/parent/children: a student account, its profile and its link to the parent, in one
-- statement.
WITH u AS (
    INSERT INTO users (email, password_hash, first_name, father_name, grandfather_name, phone,
                       roles, active_role)
    VALUES (%(email)s, %(password_hash)s, %(first_name)s, %(father_name)s, %(grandfather_name)s,
            %(phone)s, ARRAY['student'], 'student')
    RETURNING id, first_name, father_name
), s AS (
    INSERT INTO student_profiles (user_id, grade_level, school)
    SELECT id, %(grade_level)s, %(school)s FROM u
    RETURNING id, user_id, grade_level
), link AS (
    INSERT INTO parent_children (parent_id, student_id)
    SELECT %(parent_id)s, id FROM s
)
SELECT s.id, s.user_id, u.first_name || ' ' || u.father_name AS name, s.grade_level
  FROM s JOIN u ON u.id = s.user_id;

-- name: student_profile
-- GET /api/student/profile: the caller's profile and the parents linked to it
-- (parent_children_student_idx).
SELECT s.id, s.user_id, u.email, u.first_name, u.father_name, u.grandfather_name,
       u.first_name || ' ' || u.father_name AS full_name, s.grade_level, s.school, s.bio,
       s.created_at,
       coalesce((SELECT json_agg(json_build_object('id', p.id, 'user_id', p.user_id,
                                                   'name', pu.first_name || ' ' || pu.father_name)
                                 ORDER BY p.id)
                   FROM parent_children pc
                   JOIN parent_profiles p ON p.id = pc.parent_id
                   JOIN users pu ON pu.id = p.user_id
                  WHERE pc.student_id = s.id), '[]'::json) AS parents
  FROM student_profiles s
  JOIN users u ON u.id = s.user_id
 WHERE s.id = %(student_id)s;
