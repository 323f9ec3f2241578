-- Nothing is lost between the workflow and the tables: journal entries that cannot be written are kept apart
-- (dead letters), superseded and rejected messages leave the outbox's 'queued', collector tasks are cancelled
-- when the loan no longer needs them, and journal and portfolio rows name their collection cycle.

-- A journal entry the activity could not write (a field its kind's model refuses, a NUL character, a CHECK
-- such as deferred_until >= deferred_from): kept here with the reason while the rest of its batch is written,
-- for supervisors to see and fix. One row per idempotency key, so a retried batch adds nothing. `entry` is
-- the entry as received, with NUL and other control characters escaped ("\u0000" as six characters) so that
-- jsonb can hold it; `reason` names the field or the constraint, never the data.
CREATE TABLE journal_dead_letters (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    loan_id         text NOT NULL,
    kind            text NOT NULL,
    jurisdiction    text,
    cycle           date,
    at              timestamptz,
    reason          text NOT NULL,
    entry           jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_dead_letters_recorded_idx ON journal_dead_letters (recorded_at DESC);
CREATE INDEX journal_dead_letters_loan_idx ON journal_dead_letters (loan_id);

-- The collection cycle of each journal row: the overdue_since of the cycle (a cured loan that goes overdue
-- again starts a new one). NULL for rows written before cycles existed. Adding a nullable column rewrites no
-- row, so the append-only triggers are not involved.
DO $$
DECLARE
    journal_table text;
BEGIN
    FOREACH journal_table IN ARRAY ARRAY['journal_contact_attempts', 'journal_deferrals', 'journal_holds',
        'journal_promises', 'journal_payments', 'journal_stage_transitions', 'journal_collector_actions']
    LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN cycle date', journal_table);
    END LOOP;
END;
$$;

-- The portfolio row's cycle (the key stays loan_id here; a later migration keys it by cycle).
ALTER TABLE portfolio ADD COLUMN cycle date;
-- portfolio_now selects p.*, which PostgreSQL expands when the view is made: make it again to show `cycle`.
DROP VIEW portfolio_now;
CREATE VIEW portfolio_now AS
    SELECT p.*,
           greatest(0, ((p.clock_collections_anchor + (now() - p.clock_real_anchor) * p.clock_speed)
                        AT TIME ZONE p.timezone)::date - p.overdue_since) AS dpd
    FROM portfolio p;

-- The outbox: a message replaced by a later one of the same step before it went out is 'superseded' (never
-- sent, `superseded_by` names the replacing message's idempotency key); a message a provider refused for good
-- is 'failed' with `failure_reason` (the error type and the provider's status or code, never the recipient).
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('queued', 'sent', 'failed', 'superseded'));
ALTER TABLE messages
    ADD COLUMN failure_reason text,
    ADD COLUMN superseded_by text;
CREATE INDEX messages_superseded_by_idx ON messages (superseded_by) WHERE superseded_by IS NOT NULL;

-- Collector tasks follow the loan: open or claimed tasks are cancelled (paid, settled, held, ...) with the
-- reason and when; `cancel_key` is the cancelling activity's idempotency key, so a retry returns the same
-- tasks. A new kind: find a postal address before a visit or a registered letter.
ALTER TABLE collector_tasks DROP CONSTRAINT collector_tasks_kind_check;
ALTER TABLE collector_tasks ADD CONSTRAINT collector_tasks_kind_check
    CHECK (kind IN ('call', 'visit', 'review', 'promise_follow_up', 'trace_address'));
ALTER TABLE collector_tasks
    ADD COLUMN cancel_reason text CHECK (cancel_reason IN ('paid', 'settled', 'closed', 'stopped', 'hold',
        'litigation', 'written_off', 'escalated', 'superseded')),
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancel_key text,
    ADD CONSTRAINT collector_tasks_cancelled_check CHECK (cancelled_at IS NULL OR status = 'cancelled');
CREATE INDEX collector_tasks_cancel_key_idx ON collector_tasks (cancel_key) WHERE cancel_key IS NOT NULL;
