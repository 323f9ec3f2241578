-- The portfolio search (admin/portfolio_query.py): free text matches a loan id prefix case-insensitively and
-- any part of the borrower's name, fast on 100,000+ loans (bench/README.md has the figures).
--
-- pg_trgm ships with PostgreSQL (contrib: the official postgres images, the embedded server, managed
-- services) and is a trusted extension: the database owner may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Name substring ("smith" in "James Smith", "秀英" in "王秀英"): trigrams; a 1-2 character search uses
-- portfolio_name_lower_idx (a prefix) instead.
CREATE INDEX portfolio_name_trgm_idx ON portfolio USING gin (lower(borrower_name) gin_trgm_ops);
-- Loan id prefix whatever the case ("demo-00" finds DEMO-0012).
CREATE INDEX portfolio_loan_id_lower_idx ON portfolio (lower(loan_id) text_pattern_ops);
-- The strategy dropdown lists the distinct strategies with a loose index scan (segment and agency_id have one).
CREATE INDEX portfolio_strategy_idx ON portfolio (strategy);
-- Days past due are computed per row (portfolio_now), but a loan on a real clock (speed 1, anchors equal:
-- every loan outside the demo) is `today - overdue_since` days past due give or take a day for its time zone.
-- The search bounds overdue_since with that for DPD buckets and the DPD order (admin/portfolio_query.py) and
-- sorts the few loans on other clocks (the demo's fast ones) whatever their overdue_since. The expression is
-- the same text as CLOCK_KIND there: the planner gets its statistics (how few loans run on other clocks).
CREATE INDEX portfolio_clock_idx ON portfolio (
    (CASE WHEN clock_speed = 1 AND clock_collections_anchor = clock_real_anchor THEN 0 ELSE 1 END),
    overdue_since
);
