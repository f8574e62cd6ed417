-- Login throttling (astegni/accounts/login_throttle.py). Names start with la_.
-- Each email has one counter per client address, and one account-wide counter (client '*').

-- name: la_attempt
SELECT login_attempt(lower(%(email)s), %(client)s, %(limit)s, %(window_seconds)s,
                     %(lockout_seconds)s) AS retry_after;

-- name: la_attempt_account
-- The account-wide counter, skipped for an address the account logged in from lately
-- (login_trusted_pkey).
SELECT CASE WHEN EXISTS (SELECT 1 FROM login_trusted
                          WHERE email_key = lower(%(email)s) AND client = %(client)s
                            AND trusted_until > now())
            THEN 0
            ELSE login_attempt(lower(%(email)s), '*', %(limit)s, %(window_seconds)s,
                               %(lockout_seconds)s)
       END AS retry_after;

-- name: la_succeeded
-- A successful login clears its address's count, trusts the address for this email, and gives
-- back its own attempt on the account-wide count.
WITH address AS (
    DELETE FROM login_attempts WHERE email_key = lower(%(email)s) AND client = %(client)s
), trusted AS (
    INSERT INTO login_trusted (email_key, client, trusted_until)
    VALUES (lower(%(email)s), %(client)s, now() + make_interval(days => %(trust_days)s))
    ON CONFLICT (email_key, client) DO UPDATE SET trusted_until = EXCLUDED.trusted_until
)
UPDATE login_attempts SET attempts = greatest(attempts - 1, 0)
 WHERE email_key = lower(%(email)s) AND client = '*' AND locked_until IS NULL;

-- name: la_purge
-- Counters whose window and lockout have both ended: login_attempts_window_idx.
DELETE FROM login_attempts
 WHERE window_start < now() - make_interval(secs => %(window_seconds)s)
   AND (locked_until IS NULL OR locked_until < now());

-- name: la_purge_trusted
-- Trust that has run out: login_trusted_until_idx.
DELETE FROM login_trusted WHERE trusted_until < now();
