-- The session-request create counts its hits in rate_limits through rate_limit_hit(), as every
-- other write does (bucket 'session_request'); rate_limit_counters, its own table, is unused.
DROP TABLE IF EXISTS rate_limit_counters;
