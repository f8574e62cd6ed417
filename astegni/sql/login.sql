-- Login throttling (astegni/login_throttle.py). Names start with la_.

-- name: la_attempt
SELECT login_attempt(lower(%(email)s), %(client)s, %(limit)s, %(window_seconds)s,
                     %(lockout_seconds)s) AS retry_after;

-- name: la_succeeded
-- A successful login clears its address's count and gives back its own attempt on the
-- account-wide count, so that an owner's logins never add up to a lockout.
WITH address AS (
    DELETE FROM login_attempts WHERE email_key = lower(%(email)s) AND client = %(client)s
)
UPDATE login_attempts SET attempts = greatest(attempts - 1, 0)
 WHERE email_key = lower(%(email)s) AND client = '' AND locked_until IS NULL;

-- name: la_purge
-- Counters whose window and lockout have both ended: login_attempts_window_idx.
DELETE FROM login_attempts
 WHERE window_start < now() - make_interval(secs => %(window_seconds)s)
   AND (locked_until IS NULL OR locked_until < now());
