-- Run once by the postgres image on an empty data directory. The app asks for these in the
-- "options" startup parameter, which PgBouncer cannot pass on; set on the database instead,
-- they apply to every session, and DISCARD ALL between clients keeps them.
ALTER DATABASE astegni SET statement_timeout = 5000;
ALTER DATABASE astegni SET timezone = 'UTC';
