-- IF NOT EXISTS: a database that was unversioned gets 0002-0004 after the baseline, and a test
-- simulates that on a database the current migrations made.
-- Email and address pairs that logged in successfully: the account-wide ceiling of the login
-- throttle does not apply to them, so strangers' guesses cannot lock the owner out of their
-- usual address (astegni/login_throttle.py).
CREATE TABLE IF NOT EXISTS login_trusted (
    email_key     text        NOT NULL,
    client        text        NOT NULL,
    trusted_until timestamptz NOT NULL,
    PRIMARY KEY (email_key, client)
);
-- The sweep's purge of trust that has run out.
CREATE INDEX IF NOT EXISTS login_trusted_until_idx ON login_trusted (trusted_until);

-- The account-wide counter is keyed '*' now; '' was also what a client without an address got.
DELETE FROM login_attempts WHERE client = '';

-- my-requests, the learner's side: the requests sent for a student (by a parent), newest first.
CREATE INDEX IF NOT EXISTS requested_sessions_learner_idx ON requested_sessions (requested_to_id, id DESC);
