-- Inbound messages and receipts (inbound/): what providers tell us after a message went out, and replies.
--
-- Every webhook call is one row of `inbound_events`, unique per (provider, event id): a provider that
-- retries, or anyone replaying a captured request, finds the row and nothing changes a second time. The row
-- keeps what was decided (kind, action, outcome), never the reply's text or the sender's number or address.

CREATE TABLE inbound_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider        text NOT NULL CHECK (provider IN ('sms', 'email', 'push')),
    event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
    kind            text NOT NULL CHECK (kind IN ('reply', 'receipt', 'bounce')),
    -- reply: stop | help | other; receipt and bounce: delivered | failed | unknown
    classification  text NOT NULL,
    loan_ids        text[] NOT NULL DEFAULT '{}',
    message_id      uuid REFERENCES messages (id) ON DELETE SET NULL,
    -- what was done: opted_out, already_opted_out, help_sent, receipt_recorded, unreachable, ignored,
    -- unknown (no loan or message matched), pending (the workflow could not be told yet: see `detail`)
    outcome         text NOT NULL,
    detail          text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, event_id)
);
CREATE INDEX inbound_events_received_idx ON inbound_events (received_at);

-- Receipts on the outbox row: the provider's last word on delivery. 'failed' with a permanent reason also
-- closes the contact point (below).
ALTER TABLE messages
    ADD COLUMN delivery_status text CHECK (delivery_status IN ('delivered', 'failed', 'unknown')),
    ADD COLUMN delivery_at     timestamptz,
    ADD COLUMN delivery_reason text CHECK (length(delivery_reason) <= 64);
-- Receipts name the provider's message id; replies the number or address a message went to.
CREATE INDEX messages_provider_id_idx ON messages (channel, provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX messages_recipient_idx ON messages (channel, recipient) WHERE recipient <> '';

-- Contact points a provider declared unreachable for good (unknown subscriber, hard bounce, no device),
-- kept per loan until the loan's workflow has been told (`told_at`). The address is the loan's own contact
-- point (PII, like the outbox's recipient): erasing a loan deletes its rows.
CREATE TABLE unreachable_contact_points (
    loan_id         text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('sms', 'email', 'push')),
    address         text NOT NULL,
    reason          text NOT NULL CHECK (length(reason) <= 64),
    message_id      uuid REFERENCES messages (id) ON DELETE SET NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    told_at         timestamptz,
    PRIMARY KEY (loan_id, channel, address)
);
CREATE INDEX unreachable_contact_points_untold_idx ON unreachable_contact_points (recorded_at)
    WHERE told_at IS NULL;

-- The address lives no longer than the outbox's copy: when the message it was learned from is redacted
-- (retention, or erasure of the loan: privacy/erasure.py blanks `recipient`), the row goes too.
CREATE FUNCTION unreachable_contact_points_follow_redaction() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unreachable_contact_points WHERE loan_id = OLD.loan_id AND address = OLD.recipient;
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_redaction_clears_unreachable
    AFTER UPDATE OF recipient ON messages
    FOR EACH ROW WHEN (OLD.recipient <> '' AND NEW.recipient = '')
    EXECUTE FUNCTION unreachable_contact_points_follow_redaction();
