-- Users of the collectors' admin UI (admin/). Passwords are argon2id hashes (never the password); repeated
-- failed logins lock the account until `locked_until`. Usernames are compared case-insensitively.
CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('collector', 'supervisor', 'admin')),
    display_name    text NOT NULL DEFAULT '',
    locale          text NOT NULL DEFAULT 'zh-CN' CHECK (locale IN ('zh-CN', 'en')),
    active          boolean NOT NULL DEFAULT true,
    failed_logins   integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until    timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (username);

-- The work queue: open tasks, most urgent first (priority descending, then due time).
CREATE INDEX collector_tasks_open_priority_idx ON collector_tasks (priority DESC, due_at)
    WHERE status = 'open';
