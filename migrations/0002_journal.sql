-- The collections journal: an append-only record of what was done on each loan, for audit by a regulator.
--
-- One table per kind of event. Rows are written once per idempotency key (a retried activity writes nothing
-- twice) and never changed: a trigger rejects every UPDATE, and every DELETE unless the session set
-- `overdue.purge = 'on'` (only `python -m stack.purge` does, for rows past the jurisdiction's retention).
-- `at` is when the event happened (collections time); `recorded_at` is when the row was written, and is what
-- retention counts from. `jurisdiction` ('cn', 'us', 'uk') picks the retention period.
--
-- No PII: no names, phone numbers or e-mail addresses. A contact attempt keeps the kind of address it used
-- (phone / email / app / postal / none), never the address; `detail` is only the free text a collector wrote.

CREATE FUNCTION journal_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('overdue.purge', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'journal rows are never changed; only python -m stack.purge deletes rows past retention';
END;
$$;

-- Contact attempts on any channel: messages (content_ref = messages.id), calls and visits (collector task id).
CREATE TABLE journal_contact_attempts (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    jurisdiction    text NOT NULL,
    at              timestamptz NOT NULL,
    channel         text NOT NULL,
    template        text,
    content_ref     text,
    provider_id     text,
    status          text NOT NULL,
    address_kind    text NOT NULL CHECK (address_kind IN ('phone', 'email', 'app', 'postal', 'none')),
    actor           text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_contact_attempts_loan_idx ON journal_contact_attempts (loan_id, at);
CREATE INDEX journal_contact_attempts_retention_idx ON journal_contact_attempts (jurisdiction, recorded_at);

-- A step not taken when planned (contact hours, frequency caps, holds): until when, and by which rule.
CREATE TABLE journal_deferrals (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    jurisdiction    text NOT NULL,
    at              timestamptz NOT NULL,
    step_key        text NOT NULL,
    channel         text,
    rule            text NOT NULL,
    reason          text NOT NULL,
    deferred_from   timestamptz NOT NULL,
    deferred_until  timestamptz,  -- NULL: never (the step was dropped)
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (deferred_until IS NULL OR deferred_until >= deferred_from)
);
CREATE INDEX journal_deferrals_loan_idx ON journal_deferrals (loan_id, at);
CREATE INDEX journal_deferrals_until_idx ON journal_deferrals (deferred_until) WHERE deferred_until IS NOT NULL;
CREATE INDEX journal_deferrals_retention_idx ON journal_deferrals (jurisdiction, recorded_at);

-- Holds and contact restrictions raised, resolved or expired.
CREATE TABLE journal_holds (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    jurisdiction    text NOT NULL,
    at              timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('dispute', 'hardship', 'breathing_space', 'cease_all',
                        'opt_out_channel', 'opt_out_address', 'preferred_hours', 'bankruptcy', 'deceased')),
    action          text NOT NULL CHECK (action IN ('raised', 'resolved', 'expired')),
    until           timestamptz,
    detail          text NOT NULL DEFAULT '',
    actor           text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_holds_loan_idx ON journal_holds (loan_id, at);
CREATE INDEX journal_holds_until_idx ON journal_holds (until) WHERE until IS NOT NULL;
CREATE INDEX journal_holds_kind_idx ON journal_holds (kind, at);
CREATE INDEX journal_holds_retention_idx ON journal_holds (jurisdiction, recorded_at);

-- Promises to pay and what became of them: one row per change of fate.
CREATE TABLE journal_promises (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    jurisdiction    text NOT NULL,
    at              timestamptz NOT NULL,
    promise_id      text NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
    currency        char(3) NOT NULL,
    due_date        date NOT NULL,
    fate            text NOT NULL CHECK (fate IN ('made', 'kept', 'broken', 'cancelled')),
    actor           text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_promises_loan_idx ON journal_promises (loan_id, at);
CREATE INDEX journal_promises_promise_idx ON journal_promises (promise_id);
CREATE INDEX journal_promises_due_idx ON journal_promises (due_date);
CREATE INDEX journal_promises_retention_idx ON journal_promises (jurisdiction, recorded_at);

-- Payments received, and whether (and why not) they were applied to the case.
CREATE TABLE journal_payments (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    jurisdiction    text NOT NULL,
    at              timestamptz NOT NULL,
    payment_id      text NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
    currency        char(3) NOT NULL,
    received_at     timestamptz NOT NULL,
    source          text NOT NULL,
    applied         boolean NOT NULL,
    reason          text,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_payments_loan_idx ON journal_payments (loan_id, at);
CREATE INDEX journal_payments_payment_idx ON journal_payments (payment_id);
CREATE INDEX journal_payments_received_idx ON journal_payments (received_at);
CREATE INDEX journal_payments_retention_idx ON journal_payments (jurisdiction, recorded_at);

-- Stage changes of the case (soft, hard, agency, legal, ...), with the days past due at the time.
CREATE TABLE journal_stage_transitions (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    jurisdiction    text NOT NULL,
    at              timestamptz NOT NULL,
    from_stage      text,  -- NULL: the case was opened
    to_stage        text NOT NULL,
    dpd             integer NOT NULL CHECK (dpd >= 0),
    reason          text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_stage_transitions_loan_idx ON journal_stage_transitions (loan_id, at);
CREATE INDEX journal_stage_transitions_stage_idx ON journal_stage_transitions (to_stage, at);
CREATE INDEX journal_stage_transitions_retention_idx ON journal_stage_transitions (jurisdiction, recorded_at);

-- What a collector did on the case (call outcome, visit, note), in the collector's own words in `detail`.
CREATE TABLE journal_collector_actions (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    jurisdiction    text NOT NULL,
    at              timestamptz NOT NULL,
    collector       text NOT NULL,
    action          text NOT NULL,
    outcome         text,
    detail          text NOT NULL DEFAULT '',
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_collector_actions_loan_idx ON journal_collector_actions (loan_id, at);
CREATE INDEX journal_collector_actions_collector_idx ON journal_collector_actions (collector, at);
CREATE INDEX journal_collector_actions_retention_idx ON journal_collector_actions (jurisdiction, recorded_at);

-- Every journal table: no UPDATE ever, DELETE only by the purge, no TRUNCATE (it skips row triggers).
CREATE FUNCTION journal_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE is not allowed', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

DO $$
DECLARE
    journal_table text;
BEGIN
    FOREACH journal_table IN ARRAY ARRAY['journal_contact_attempts', 'journal_deferrals', 'journal_holds',
        'journal_promises', 'journal_payments', 'journal_stage_transitions', 'journal_collector_actions']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION journal_append_only()',
                       journal_table || '_append_only', journal_table);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION journal_no_truncate()',
                       journal_table || '_no_truncate', journal_table);
    END LOOP;
END;
$$;

-- When each loan's journal saw activity, across every kind: the purge deletes a loan's rows only once the
-- loan has been quiet for the whole retention period ("keep N years after the last activity").
CREATE VIEW journal_loan_activity AS
    SELECT loan_id, recorded_at FROM journal_contact_attempts
    UNION ALL SELECT loan_id, recorded_at FROM journal_deferrals
    UNION ALL SELECT loan_id, recorded_at FROM journal_holds
    UNION ALL SELECT loan_id, recorded_at FROM journal_promises
    UNION ALL SELECT loan_id, recorded_at FROM journal_payments
    UNION ALL SELECT loan_id, recorded_at FROM journal_stage_transitions
    UNION ALL SELECT loan_id, recorded_at FROM journal_collector_actions;
