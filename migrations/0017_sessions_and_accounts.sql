-- Server-side sessions of the admin UI (admin/sessions.py). The browser's cookie carries only a random id;
-- this table keeps its SHA-256 (a copied database cannot be replayed as cookies). A session ends at logout
-- (revoked_at), after `idle` without a request (last_seen_at) or at expires_at, whichever comes first; the
-- user's own list shows client_address and user_agent so they can recognise and end a session.
-- stage: 'full' (logged in), 'totp' (password accepted, waiting for the second factor), 'enrol' (password
-- accepted, must enrol a second factor first). Only 'full' sessions reach the pages.
CREATE TABLE admin_sessions (
    id_hash         bytea PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stage           text NOT NULL DEFAULT 'full' CHECK (stage IN ('full', 'totp', 'enrol')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    client_address  text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 300)
);
CREATE INDEX admin_sessions_user_idx ON admin_sessions (user_id) WHERE revoked_at IS NULL;
-- What the retention purge scans: ended sessions by end time.
CREATE INDEX admin_sessions_expires_idx ON admin_sessions (expires_at);

-- Accounts: deactivation (a deactivated user's sessions stop at once: every request joins users.active),
-- an optional TOTP second factor (the secret AES-GCM encrypted with a key derived from
-- OVERDUE_ADMIN_SECRET_KEY, never in clear), and the last accepted time step (a code is used once).
ALTER TABLE users
    ADD COLUMN deactivated_at timestamptz,
    ADD COLUMN totp_secret text,
    ADD COLUMN totp_enabled_at timestamptz,
    ADD COLUMN totp_last_step bigint;

-- Failed-login throttling (admin/logins.py), replacing users.failed_logins/locked_until (kept, unused): one
-- row per (account, client address) pair and one per client address, keyed by a SHA-256 so neither user
-- names nor addresses are stored. A pair locks after a few failures; an address after many failures over
-- any accounts. A supervisor logging in from their own address is never locked by someone else's guesses.
CREATE TABLE login_throttle (
    key             bytea PRIMARY KEY CHECK (octet_length(key) = 32),
    failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    window_start    timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz
);

-- Every change to an account (admin.users commands and the admin's users page): who did it (the operator's
-- OS user for the command, 'admin:<username>' for the page), when, what, and the values before and after.
-- Never a password or a secret: a reset records only that it happened. Append-only for the application.
CREATE TABLE user_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    user_id         bigint REFERENCES users (id) ON DELETE SET NULL,
    username        text NOT NULL,
    action          text NOT NULL,
    before          jsonb,
    after           jsonb
);
CREATE INDEX user_audit_user_idx ON user_audit (user_id, at);
