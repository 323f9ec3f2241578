-- Legal stage: the registered-mail dispatch of the lawyer's letter, and property preservation on referrals.

-- A litigation referral may ask the court for property preservation (财产保全) together with the filing.
ALTER TABLE litigation_referrals
    ADD COLUMN property_preservation boolean NOT NULL DEFAULT false;

-- Documents sent by registered mail: one row per idempotency key, with the carrier's tracking reference
-- (a UPU S10 number such as RR123456785CN: service code, 8-digit serial, check digit, country).
CREATE TABLE legal_dispatches (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key    text NOT NULL UNIQUE,
    loan_id            text NOT NULL,
    document_id        uuid NOT NULL REFERENCES legal_documents (id),
    locale             text NOT NULL,
    carrier            text NOT NULL,
    tracking_reference text NOT NULL UNIQUE CHECK (tracking_reference ~ '^[A-Z]{2}[0-9]{9}[A-Z]{2}$'),
    status             text NOT NULL DEFAULT 'dispatched'
                       CHECK (status IN ('dispatched', 'delivered', 'returned', 'failed')),
    dispatched_at      timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX legal_dispatches_loan_id_idx ON legal_dispatches (loan_id);
CREATE INDEX legal_dispatches_document_id_idx ON legal_dispatches (document_id);
