-- The collections side-effect store: every activity writes one row per idempotency key.
--
-- Idempotency keys ("{loan_id}:{overdue_since}:{step key}") are UNIQUE so a retried activity finds the row it
-- wrote before instead of sending, placing or filing twice. Money is BIGINT minor units beside an ISO-4217
-- currency, never floats. Ids are UUIDs made by the database (gen_random_uuid, built in since PostgreSQL 13).

-- Outbox of borrower messages (SMS, e-mail, app push). A message is written 'queued'; a channel adapter that
-- delivers it at once (or a dispatcher reading the outbox) marks it 'sent' with the provider's id.
CREATE TABLE messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    step_key        text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('sms', 'email', 'push')),
    template        text NOT NULL,
    locale          text NOT NULL,
    recipient       text NOT NULL,
    subject         text,
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    provider_id     text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_loan_id_idx ON messages (loan_id);
CREATE INDEX messages_queued_idx ON messages (created_at) WHERE status = 'queued';

-- Work queue of collectors: calls, field visits, supervisor reviews, promise follow-ups.
CREATE TABLE collector_tasks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    step_key        text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('call', 'visit', 'review', 'promise_follow_up')),
    due_at          timestamptz NOT NULL,
    priority        integer NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    pool            text NOT NULL DEFAULT 'default',
    note            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    assignee        text,
    outcome         text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX collector_tasks_loan_id_idx ON collector_tasks (loan_id);
CREATE INDEX collector_tasks_queue_idx ON collector_tasks (status, due_at);

-- Collection agencies the lender places accounts with. An empty `segments` means the agency takes any segment.
CREATE TABLE agencies (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    capacity        integer NOT NULL CHECK (capacity >= 0),
    segments        text[] NOT NULL DEFAULT '{}',
    commission_bps  integer NOT NULL CHECK (commission_bps BETWEEN 0 AND 10000),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Two demo agencies: a generalist, and a smaller one that takes the standard and riskier segments.
INSERT INTO agencies (id, name, capacity, segments, commission_bps) VALUES
    ('east-recovery', 'East Recovery Partners', 500, '{}', 1800),
    ('north-credit', 'North Credit Services', 200, '{standard,high_balance,high_risk}', 2200);

-- An account handed to an agency for a period. Un-recalled placements count against the agency's capacity;
-- a loan is with at most one agency at a time.
CREATE TABLE agency_placements (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key             text NOT NULL UNIQUE,
    loan_id                     text NOT NULL,
    agency_id                   text NOT NULL REFERENCES agencies (id),
    segment                     text NOT NULL,
    dpd                         integer NOT NULL CHECK (dpd >= 0),
    amount_overdue_minor        bigint NOT NULL CHECK (amount_overdue_minor >= 0),
    principal_outstanding_minor bigint NOT NULL CHECK (principal_outstanding_minor >= 0),
    currency                    char(3) NOT NULL,
    placed_at                   timestamptz NOT NULL,
    expires_at                  timestamptz NOT NULL CHECK (expires_at > placed_at),
    recalled_at                 timestamptz,
    recall_reason               text CHECK (recall_reason IN ('paid', 'closed', 'expired', 'escalated', 'written_off')),
    recall_key                  text UNIQUE,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK ((recalled_at IS NULL) = (recall_reason IS NULL))
);
CREATE INDEX agency_placements_loan_id_idx ON agency_placements (loan_id);
CREATE INDEX agency_placements_active_idx ON agency_placements (agency_id) WHERE recalled_at IS NULL;
CREATE UNIQUE INDEX agency_placements_one_active_per_loan ON agency_placements (loan_id) WHERE recalled_at IS NULL;

-- Generated legal documents (PDF bytes and their SHA-256, so a copy handed to a court can be verified).
CREATE TABLE legal_documents (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    kind            text NOT NULL DEFAULT 'lawyer_letter' CHECK (kind IN ('lawyer_letter')),
    locale          text NOT NULL,
    content_type    text NOT NULL DEFAULT 'application/pdf',
    sha256          char(64) NOT NULL,
    size_bytes      integer NOT NULL CHECK (size_bytes > 0),
    content         bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX legal_documents_loan_id_idx ON legal_documents (loan_id);

-- Loans referred to litigation, with the documents and ledger summary for the court file.
CREATE TABLE litigation_referrals (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key             text NOT NULL UNIQUE,
    loan_id                     text NOT NULL,
    currency                    char(3) NOT NULL,
    amount_overdue_minor        bigint NOT NULL CHECK (amount_overdue_minor >= 0),
    principal_outstanding_minor bigint NOT NULL CHECK (principal_outstanding_minor >= 0),
    dpd                         integer NOT NULL CHECK (dpd >= 0),
    document_ids                text[] NOT NULL DEFAULT '{}',
    summary                     text NOT NULL,
    status                      text NOT NULL DEFAULT 'referred',
    created_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX litigation_referrals_loan_id_idx ON litigation_referrals (loan_id);
