-- Payments from the borrower page (payments/): one row per payment intent the product asked a payment
-- provider for, and one row per provider webhook event seen.
--
-- An intent only becomes the loan's `payment` signal when the provider's signed webhook says it was paid
-- (status 'confirmed'); declined and expired intents signal nothing. The signal's payment id is
-- 'provider:<provider_id>', so the workflow applies it once however often the webhook comes.
-- No personal data here: amounts, currency and the provider's opaque ids only.

CREATE TABLE payment_intents (
    -- at most 119: the payment id "provider:<provider_id>" fits Payment.payment_id (128)
    provider_id     text PRIMARY KEY CHECK (length(provider_id) BETWEEN 1 AND 119),
    loan_id         text NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'confirmed', 'declined', 'expired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz,
    -- when the loan's workflow accepted the payment signal (NULL: not yet told, e.g. Temporal was down)
    signalled_at    timestamptz
);
CREATE INDEX payment_intents_loan_idx ON payment_intents (loan_id, created_at);
CREATE INDEX payment_intents_confirmed_idx ON payment_intents (confirmed_at) WHERE status = 'confirmed';

-- Every webhook event, unique per provider event id: a retried or replayed delivery finds its row and
-- changes nothing a second time.
CREATE TABLE payment_webhook_events (
    event_id        text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 200),
    provider_id     text REFERENCES payment_intents (provider_id) ON DELETE SET NULL,
    kind            text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    -- signalled, already_confirmed, declined, expired, ignored (unknown intent or kind)
    outcome         text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
