-- Demo data (astegni/demo.py): profile details that registration does not ask for.

-- name: any_user
SELECT EXISTS (SELECT 1 FROM users) AS present;

-- name: describe_tutor
UPDATE tutor_profiles
   SET bio = %(bio)s, subjects = %(subjects)s, location = %(location)s,
       languages = %(languages)s, is_verified = true
 WHERE id = %(tutor_id)s;

-- name: describe_student
UPDATE student_profiles SET grade_level = %(grade_level)s, school = %(school)s, bio = %(bio)s
 WHERE id = %(student_id)s;

-- name: describe_parent
UPDATE parent_profiles SET bio = %(bio)s WHERE id = %(parent_id)s;

-- name: link_child
INSERT INTO parent_children (parent_id, student_id) VALUES (%(parent_id)s, %(student_id)s)
ON CONFLICT DO NOTHING;

-- name: demo_tutor_id
-- The tutor profile the start-up banner links to.
SELECT t.id FROM tutor_profiles t JOIN users u ON u.id = t.user_id
 WHERE lower(u.email) = lower(%(email)s);
