-- GitHub issue #12: sign-up review, server-side single-use OAuth states, no stored GitHub tokens.
-- Keep in step with sql/migrations/sqlite/0004_signup_review_oauth_states.sql.

-- When an admin last reviewed the account (changed its role, (de)activated it, or marked it reviewed) and
-- who. NULL: signed up and not reviewed yet; the users page marks such accounts "new". Accounts that got
-- admin at sign-in (the first admin, ADMIN_LOGINS) are created reviewed (reviewed_by NULL: the system).
ALTER TABLE users ADD COLUMN reviewed_at TEXT;
ALTER TABLE users ADD COLUMN reviewed_by TEXT REFERENCES users (id) ON DELETE SET NULL;

-- Existing accounts: reviewed when an admin changed or (de)activated them (per the audit trail), and admins.
-- Everyone else signed up under the old open policy (every GitHub account a member): left for review.
UPDATE users
SET reviewed_at = COALESCE(
    (SELECT max(a.created_at) FROM audit_log a
     WHERE a.entity_type = 'user' AND a.entity_id = users.id
       AND a.action IN ('user.role_changed', 'user.deactivated', 'user.reactivated')),
    CASE WHEN role = 'admin' THEN created_at END);

-- The GitHub access token is no longer kept (nothing used it). The column stays, always NULL, so databases
-- exported by older versions still import.
UPDATE users SET github_token = NULL WHERE github_token IS NOT NULL;

-- Sign-ins in flight: GitHub's OAuth `state` and the PKCE verifier, kept here rather than in the browser.
-- A row is consumed by a conditional DELETE ... RETURNING (single use, even across processes), only by the
-- browser that started the sign-in, and only before it expires (10 minutes).
CREATE TABLE oauth_states (
    id          TEXT PRIMARY KEY,  -- SHA-256 of the state sent to GitHub
    browser     TEXT NOT NULL,     -- SHA-256 of the random nonce in the starting browser's session cookie
    verifier    TEXT NOT NULL,     -- the PKCE code verifier
    next_path   TEXT NOT NULL,     -- where to go after signing in (a local path)
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX idx_oauth_states_expires ON oauth_states (expires_at);
