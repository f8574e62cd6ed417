-- Tutor profiles and packages.

-- name: tutor_public
-- GET /api/view-tutor/{id}, public: the profile of an active user who holds the tutor role, with a
-- summary of the packages. Only what a visitor may see: no email, no phone.
SELECT t.id, t.user_id, u.first_name, u.father_name, u.grandfather_name,
       u.first_name || ' ' || u.father_name AS full_name,
       t.bio, t.subjects, t.location, t.languages, t.is_verified, t.created_at,
       pk.active_packages, pk.min_hourly_rate
  FROM tutor_profiles t
  JOIN users u ON u.id = t.user_id
 CROSS JOIN LATERAL (
       SELECT count(*)::int AS active_packages, min(p.hourly_rate) AS min_hourly_rate
         FROM tutor_packages p
        WHERE p.tutor_id = t.id AND p.is_active
       ) pk
 WHERE t.id = %(tutor_id)s AND u.is_active AND 'tutor' = ANY (u.roles);

-- name: public_packages
-- GET /api/view-tutor/{id}/packages, public: the active packages of an active user who holds the
-- tutor role (tutor_packages_tutor_idx).
SELECT p.id, p.tutor_id, p.name, p.description, p.hourly_rate, p.schedule_type, p.schedule_days,
       p.start_time, p.end_time, p.session_format, p.is_active, p.created_at, p.updated_at
  FROM tutor_packages p
  JOIN tutor_profiles t ON t.id = p.tutor_id
  JOIN users u ON u.id = t.user_id AND u.is_active AND 'tutor' = ANY (u.roles)
 WHERE p.tutor_id = %(tutor_id)s AND p.is_active
 ORDER BY p.id;

-- name: own_packages
-- GET /api/tutor/packages: all of the caller's packages, the deactivated ones too.
SELECT id, tutor_id, name, description, hourly_rate, schedule_type, schedule_days, start_time,
       end_time, session_format, is_active, created_at, updated_at
  FROM tutor_packages
 WHERE tutor_id = %(tutor_id)s
 ORDER BY id;

-- name: create_package
INSERT INTO tutor_packages (tutor_id, name, description, hourly_rate, schedule_type, schedule_days,
                            start_time, end_time, session_format, is_active)
VALUES (%(tutor_id)s, %(name)s, %(description)s, %(hourly_rate)s, %(schedule_type)s,
        %(schedule_days)s, %(start_time)s, %(end_time)s, %(session_format)s, %(is_active)s)
RETURNING id, tutor_id, name, description, hourly_rate, schedule_type, schedule_days, start_time,
          end_time, session_format, is_active, created_at, updated_at;

-- name: own_package_for_update
-- PUT /api/tutor/packages/{id}: the row to merge the changes into, locked against a parallel edit.
SELECT id, tutor_id, name, description, hourly_rate, schedule_type, schedule_days, start_time,
       end_time, session_format, is_active
  FROM tutor_packages
 WHERE id = %(package_id)s AND tutor_id = %(tutor_id)s
   FOR UPDATE;

-- name: update_package
UPDATE tutor_packages
   SET name = %(name)s, description = %(description)s, hourly_rate = %(hourly_rate)s,
       schedule_type = %(schedule_type)s, schedule_days = %(schedule_days)s,
       start_time = %(start_time)s, end_time = %(end_time)s, session_format = %(session_format)s,
       is_active = %(is_active)s, updated_at = now()
 WHERE id = %(package_id)s AND tutor_id = %(tutor_id)s
RETURNING id, tutor_id, name, description, hourly_rate, schedule_type, schedule_days, start_time,
          end_time, session_format, is_active, created_at, updated_at;

-- name: deactivate_package
-- DELETE /api/tutor/packages/{id}: packages are never deleted, since requests and enrolments
-- keep pointing at them.
UPDATE tutor_packages
   SET is_active = false, updated_at = now()
 WHERE id = %(package_id)s AND tutor_id = %(tutor_id)s
RETURNING id, tutor_id, name, description, hourly_rate, schedule_type, schedule_days, start_time,
          end_time, session_format, is_active, created_at, updated_at;
