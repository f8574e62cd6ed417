-- realtime_publish() NOTIFYed an event inside the writing transaction; events leave after the
-- commit (astegni/core/events.py). The repeatable step drops only the functions its files
-- define, so a function the files no longer hold is dropped by a migration.
DROP FUNCTION IF EXISTS realtime_publish(text, integer[], jsonb, integer);
DROP FUNCTION IF EXISTS realtime_publish(text, integer[], jsonb);
