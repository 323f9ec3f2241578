-- Content-addressed strategies and contact profiles (domain/definitions.py): stored once, shared by every loan
-- whose workflow input names them by reference instead of carrying a copy (issue 12). `ref` is the sha256 of
-- `body`, the definition's canonical JSON; a row is never updated (a changed definition is a new row), so a
-- running loan resolves exactly what it started with, on any worker, on every replay.
CREATE TABLE definitions (
    ref text PRIMARY KEY CHECK (ref ~ '^sha256:[0-9a-f]{64}$'),
    kind text NOT NULL CHECK (kind IN ('strategy', 'profile')),
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
