-- Rate limits of writes: rate_limit_hit() of core/functions.sql, and the sweep's purge.
-- Names start with rl_: prepared statements share one namespace per connection.

-- name: rl_hit
SELECT rate_limit_hit(%(bucket)s, %(subject)s, %(limit)s, %(window_seconds)s) AS retry_after;

-- name: rl_purge
-- Windows that ended more than a day ago (no limit is longer than that): rate_limits_window_idx.
DELETE FROM rate_limits WHERE window_start < now() - interval '1 day';
