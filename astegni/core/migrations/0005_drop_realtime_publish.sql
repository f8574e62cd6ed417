-- Events leave after the commit (astegni/core/events.py); nothing NOTIFYs inside a transaction
-- any more. realtime_publish() is no longer in the repeatable files, and the repeatable step
-- drops only the functions those files define, so it goes here.
DROP FUNCTION IF EXISTS realtime_publish(text, integer[], jsonb, integer);
DROP FUNCTION IF EXISTS realtime_publish(text, integer[], jsonb);
