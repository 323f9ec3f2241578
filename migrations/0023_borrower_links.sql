-- The borrower page (borrower/): the link in each message, the one-time codes that unlock it and the short
-- sessions a verified code opens. Only hashes of tokens, codes and session ids are stored: a copy of this
-- table opens nothing. No personal data: the code goes to the recipient of the link's own message (the
-- `messages` outbox row), found by `message_key`.
CREATE TABLE borrower_links (
    token_hash   bytea PRIMARY KEY,                 -- sha256 of the token in the URL
    message_key  text NOT NULL UNIQUE,              -- the message the link was minted for: one link each
    loan_id      text NOT NULL,
    cycle        date,                              -- the collection cycle of that message (NULL: unknown)
    channel      text NOT NULL,                     -- where the message (and so the code) went
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz                        -- set when the collection ended
);
CREATE INDEX borrower_links_loan_idx ON borrower_links (loan_id);

CREATE TABLE borrower_codes (
    id             bigserial PRIMARY KEY,
    token_hash     bytea NOT NULL REFERENCES borrower_links ON DELETE CASCADE,
    recipient_hash bytea NOT NULL,                  -- sha256 of the address: the per-address limit
    code_hash      bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    used_at        timestamptz
);
CREATE INDEX borrower_codes_link_idx ON borrower_codes (token_hash, created_at);
CREATE INDEX borrower_codes_recipient_idx ON borrower_codes (recipient_hash, created_at);

CREATE TABLE borrower_sessions (
    session_hash bytea PRIMARY KEY,
    token_hash   bytea NOT NULL REFERENCES borrower_links ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX borrower_sessions_link_idx ON borrower_sessions (token_hash);
