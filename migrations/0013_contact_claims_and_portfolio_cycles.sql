-- Contact rules at the moment of human contact, and the portfolio kept per collection cycle.

-- A call or visit task the contact rules refused when a collector claimed it (outside the borrower's hours,
-- over a cap, during a hold): not offered again before `not_before` (real time), with the rules' reason for
-- the queue to show. 'infinity': refused while a restriction lasts (cease, opt-out), no end the rules can name.
-- A claim the rules accept clears both.
ALTER TABLE collector_tasks
    ADD COLUMN not_before timestamptz,
    ADD COLUMN not_before_reason text;
CREATE INDEX collector_tasks_held_back_idx ON collector_tasks (pool, not_before)
    WHERE status = 'open' AND not_before IS NOT NULL;

-- The portfolio read model, one row per collection cycle: a cured loan that goes overdue again starts a new
-- cycle (its own overdue_since, migrations/0012 `cycle`), and the dashboard counts cycles apart. Rows from
-- before cycles existed are their loan's only cycle.
UPDATE portfolio SET cycle = overdue_since WHERE cycle IS NULL;
ALTER TABLE portfolio DROP CONSTRAINT portfolio_pkey;
ALTER TABLE portfolio ALTER COLUMN cycle SET NOT NULL;
ALTER TABLE portfolio ADD PRIMARY KEY (loan_id, cycle);

-- `latest`: the loan's newest cycle, the one the work queue, the search (by default) and the dossier show.
-- Kept by the trigger below, so that reading "each loan's latest cycle" is a plain filter, not a per-row
-- subquery over 100k+ rows; the unique index makes two latest cycles of a loan impossible.
ALTER TABLE portfolio ADD COLUMN latest boolean NOT NULL DEFAULT true;
CREATE UNIQUE INDEX portfolio_latest_loan_idx ON portfolio (loan_id) WHERE latest;

-- Before a row is inserted (also the proposed row of INSERT ... ON CONFLICT, and COPY): a snapshot without a
-- cycle (older writers, the benchmark's seed) is the cycle of its overdue_since; a newer cycle of the loan
-- takes `latest` from the older ones, a late snapshot of an older cycle never does.
CREATE FUNCTION portfolio_cycle_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.cycle := coalesce(NEW.cycle, NEW.overdue_since);
    NEW.latest := NOT EXISTS (
        SELECT 1 FROM portfolio p WHERE p.loan_id = NEW.loan_id AND p.cycle > NEW.cycle
    );
    IF NEW.latest THEN
        UPDATE portfolio SET latest = false WHERE loan_id = NEW.loan_id AND cycle < NEW.cycle AND latest;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER portfolio_cycle_row BEFORE INSERT ON portfolio
    FOR EACH ROW EXECUTE FUNCTION portfolio_cycle_row();

-- Every cycle, with its days past due (a closed cycle's keep counting, as closed loans' always did).
DROP VIEW portfolio_now;
CREATE VIEW portfolio_cycles_now AS
    SELECT p.*,
           greatest(0, ((p.clock_collections_anchor + (now() - p.clock_real_anchor) * p.clock_speed)
                        AT TIME ZONE p.timezone)::date - p.overdue_since) AS dpd
    FROM portfolio p;
-- Each loan's latest cycle: at most one row per loan id, what the queue joins and the search shows.
CREATE VIEW portfolio_now AS
    SELECT * FROM portfolio_cycles_now WHERE latest;

-- The cycle a journal row belongs to. Rows written since migrations/0012 name it; an older row (cycle NULL)
-- belongs to the loan's latest cycle that had begun by the row's time, else its first one.
CREATE FUNCTION journal_cycle(row_loan_id text, row_cycle date, row_at timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        row_cycle,
        (SELECT max(p.cycle) FROM portfolio p WHERE p.loan_id = row_loan_id AND p.cycle <= row_at::date),
        (SELECT min(p.cycle) FROM portfolio p WHERE p.loan_id = row_loan_id)
    );
$$;
