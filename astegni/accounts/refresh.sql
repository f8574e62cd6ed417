-- Refresh-token families (astegni/accounts/refresh.py). Names start with rf_: prepared statements share
-- one namespace per connection.

-- name: rf_start
INSERT INTO refresh_families (user_id, current_jti, expires_at)
VALUES (%(user_id)s, %(jti)s, now() + make_interval(secs => %(lifetime_seconds)s))
RETURNING id;

-- name: rf_rotate
-- The one exchange of refresh token `jti`: at most one of two parallel exchanges matches, the
-- other waits for the row lock, then finds current_jti changed.
UPDATE refresh_families
   SET current_jti = %(new_jti)s, expires_at = now() + make_interval(secs => %(lifetime_seconds)s)
 WHERE id = %(family)s AND user_id = %(user_id)s AND current_jti = %(jti)s
   AND revoked_at IS NULL AND expires_at > now()
RETURNING id;

-- name: rf_reissue
-- New tokens for a live family without a refresh token (switch-role): the previous one is spent.
UPDATE refresh_families
   SET current_jti = %(new_jti)s, expires_at = now() + make_interval(secs => %(lifetime_seconds)s)
 WHERE id = %(family)s AND user_id = %(user_id)s AND revoked_at IS NULL AND expires_at > now()
RETURNING id;

-- name: rf_revoke
UPDATE refresh_families SET revoked_at = now()
 WHERE id = %(family)s AND user_id = %(user_id)s AND revoked_at IS NULL;

-- name: rf_purge
-- Families whose last token has expired: refresh_families_expires_idx.
DELETE FROM refresh_families WHERE expires_at < now();
