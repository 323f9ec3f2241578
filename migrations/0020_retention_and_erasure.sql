-- Retention and erasure of personal data (stack/purge.py, privacy/erasure.py; docs/personal-data.md).

-- The outbox keeps a message's recipient, subject and body only for a short operational period after it was
-- delivered, failed or superseded (OVERDUE_OUTBOX_RETENTION_DAYS); then they are blanked and `redacted_at`
-- says when. The row stays: the journal's contact attempts point at it (content_ref) and its channel,
-- template, status and provider id are the non-personal record of what was sent.
ALTER TABLE messages ADD COLUMN redacted_at timestamptz;
CREATE INDEX messages_unredacted_idx ON messages (created_at)
    WHERE redacted_at IS NULL AND status <> 'queued';

-- An erased letter or validation notice loses its PDF bytes; its SHA-256, size and dispatch stay, so a copy
-- produced in court can still be matched against what was sent.
ALTER TABLE legal_documents
    ALTER COLUMN content DROP NOT NULL,
    ADD COLUMN erased_at timestamptz,
    ADD CONSTRAINT legal_documents_erased_check CHECK ((content IS NULL) = (erased_at IS NOT NULL));

-- The journal stays append-only, with one exception: an erasure (privacy/erasure.py, the only place that sets
-- `overdue.erase = 'on'`, inside its own transaction) may blank the free text a collector wrote (`detail`),
-- which can hold a name or a number. Every other column must stay as it was, and the text can only become ''.
CREATE OR REPLACE FUNCTION journal_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('overdue.purge', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND coalesce(current_setting('overdue.erase', true), '') = 'on'
       AND to_jsonb(NEW) ? 'detail' AND to_jsonb(NEW) ->> 'detail' = ''
       AND (to_jsonb(NEW) - 'detail') = (to_jsonb(OLD) - 'detail') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'journal rows are never changed; only python -m stack.purge deletes rows past retention';
END;
$$;

-- One row per erasure run: what was erased, when, by whom, why, and how much. No personal data: the loan id
-- is the lender's reference, the counts are per table, and `reason` is the legal basis the operator gave
-- (privacy/erase.py refuses one that looks like a phone number or an e-mail address).
CREATE TABLE erasures (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    loan_id             text NOT NULL,
    erased_at           timestamptz NOT NULL DEFAULT now(),
    operator            text NOT NULL CHECK (length(operator) BETWEEN 1 AND 100),
    reason              text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    before_retention    boolean NOT NULL,   -- forced on a lawful request, within the legal retention
    loan_open           boolean NOT NULL,   -- forced while the loan was still in collection
    -- the loan's data key (Temporal histories): destroyed by this run, absent (none, or destroyed before),
    -- kept (the loan is still running: its worker must read its history), unavailable (no key store)
    data_key            text NOT NULL CHECK (data_key IN ('destroyed', 'absent', 'kept', 'unavailable')),
    counts              jsonb NOT NULL CHECK (jsonb_typeof(counts) = 'object')
);
CREATE INDEX erasures_loan_idx ON erasures (loan_id, erased_at);
