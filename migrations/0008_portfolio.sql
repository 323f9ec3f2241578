-- The portfolio read model: one row per loan in collection, the latest snapshot of its case as the loan's
-- workflow last wrote it (with each journal batch, activities/portfolio.py). The admin UI searches and charts
-- it; the workflow stays the source of truth. It holds the borrower's name (for search by name): it is
-- product data like the outbox, never copied into search attributes, logs or metrics.
--
-- Days past due move with time, not with writes: `portfolio_now` computes them from the loan's collections
-- clock (real anchor, collections anchor, speed: 1 in production, faster in the demo) in the borrower's zone.
CREATE TABLE portfolio (
    loan_id                     text PRIMARY KEY,
    borrower_name               text NOT NULL,
    jurisdiction                text NOT NULL,
    timezone                    text NOT NULL,
    locale                      text NOT NULL,
    currency                    char(3) NOT NULL,
    segment                     text NOT NULL,
    strategy                    text NOT NULL,
    stage                       text NOT NULL,
    outcome                     text,           -- NULL while the collection is open
    overdue_since               date NOT NULL,
    amount_overdue_minor        bigint NOT NULL CHECK (amount_overdue_minor >= 0),
    principal_outstanding_minor bigint NOT NULL CHECK (principal_outstanding_minor >= 0),
    paid_total_minor            bigint NOT NULL CHECK (paid_total_minor >= 0),
    hold                        text,           -- what freezes escalation (dispute, hardship, ...), NULL: none
    agency_id                   text,           -- the agency holding the loan now, NULL: none
    open_promise_due            date,
    broken_promises             integer NOT NULL DEFAULT 0,
    clock_real_anchor           timestamptz NOT NULL,
    clock_collections_anchor    timestamptz NOT NULL,
    clock_speed                 double precision NOT NULL DEFAULT 1 CHECK (clock_speed >= 1),
    as_of                       timestamptz NOT NULL,  -- collections time of the snapshot; older ones never win
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portfolio_open_idx ON portfolio (stage, overdue_since) WHERE outcome IS NULL;
CREATE INDEX portfolio_segment_idx ON portfolio (segment);
CREATE INDEX portfolio_agency_idx ON portfolio (agency_id) WHERE agency_id IS NOT NULL;
CREATE INDEX portfolio_amount_idx ON portfolio (amount_overdue_minor);
-- Free text: loan id prefix and case-insensitive name search.
CREATE INDEX portfolio_loan_id_pattern_idx ON portfolio (loan_id text_pattern_ops);
CREATE INDEX portfolio_name_lower_idx ON portfolio (lower(borrower_name) text_pattern_ops);

CREATE VIEW portfolio_now AS
    SELECT p.*,
           greatest(0, ((p.clock_collections_anchor + (now() - p.clock_real_anchor) * p.clock_speed)
                        AT TIME ZONE p.timezone)::date - p.overdue_since) AS dpd
    FROM portfolio p;
