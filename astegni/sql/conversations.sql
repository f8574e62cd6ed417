-- The one direct conversation of a pair of users.

-- name: get_or_create_direct
-- Finds or creates the pair's direct conversation and makes both users participants, in one
-- statement. DO UPDATE (not DO NOTHING) so that RETURNING yields the id even when a concurrent
-- transaction created the row after this statement's snapshot was taken.
WITH conv AS (
    INSERT INTO conversations (type, created_by_user_id, direct_user_low, direct_user_high)
    VALUES ('direct', %(creator_id)s, least(%(user_a)s, %(user_b)s)::int,
            greatest(%(user_a)s, %(user_b)s)::int)
    ON CONFLICT (direct_user_low, direct_user_high)
    DO UPDATE SET direct_user_low = EXCLUDED.direct_user_low
    RETURNING id, (xmax = 0) AS created
), members AS (
    INSERT INTO conversation_participants (conversation_id, user_id)
    SELECT conv.id, member FROM conv, unnest(ARRAY[%(user_a)s, %(user_b)s]::int[]) AS member
    ON CONFLICT (conversation_id, user_id) WHERE duplicate_of_id IS NULL DO NOTHING
)
SELECT id, created FROM conv;
