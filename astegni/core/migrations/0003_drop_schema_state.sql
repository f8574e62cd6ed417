-- The checksum of the unversioned schema.sql: schema_migrations and schema_repeatables keep
-- what is applied now.
DROP TABLE IF EXISTS schema_state;
