-- Real time: the heartbeat, the listener and the sweep.

-- name: active_users
-- The heartbeat: which of the users with open sockets are still active (users_pkey).
SELECT id FROM users WHERE id = ANY (%(user_ids)s::int[]) AND is_active;

-- name: stored_event
-- An event too large for a NOTIFY payload, which carried its id instead (astegni/core/events.py).
SELECT payload FROM realtime_events WHERE id = %(id)s;

-- name: purge_events
-- The sweep (astegni/core/housekeeping.py): stored events are read moments after their NOTIFY;
-- older ones go (realtime_events_created_idx).
DELETE FROM realtime_events WHERE created_at < now() - make_interval(secs => %(keep_seconds)s);
