-- Agencies as configuration (strategies/agencies.toml, synced at worker start) and placements through the
-- agency's HTTP API (activities/agency.py, activities/agency_http.py).

-- endpoint: the agency's API base URL, 'file' (no API: a CSV export) or 'sandbox' (make run's local agency).
-- Agencies from before this migration had no API: they are file agencies until the sync says otherwise.
ALTER TABLE agencies
    ADD COLUMN endpoint text NOT NULL DEFAULT 'file'
        CHECK (endpoint IN ('file', 'sandbox') OR endpoint ~ '^https?://'),
    -- Optional limits on the arrears, per currency ({"CNY": 100000}); a currency not listed is not taken.
    ADD COLUMN min_amount_overdue_minor jsonb CHECK (jsonb_typeof(min_amount_overdue_minor) = 'object'),
    ADD COLUMN max_amount_overdue_minor jsonb CHECK (jsonb_typeof(max_amount_overdue_minor) = 'object'),
    -- The CSV export carries the borrower's name and phone only for agencies marked so.
    ADD COLUMN receives_contact_details boolean NOT NULL DEFAULT false,
    -- Round-robin among equal agencies: the least recently assigned goes first.
    ADD COLUMN last_assigned_at timestamptz,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- A placement is written 'pending' before the agency's API is called and marked 'accepted' (with the agency's
-- reference) once it answers 2xx; a retry of a pending placement calls again with the same Idempotency-Key,
-- an accepted one never calls again. 'rejected': the agency refused it for good (rejected_code says why);
-- it neither counts against capacity nor keeps the loan from being placed elsewhere. Placements made before
-- this migration were made in the database alone: they are accepted.
ALTER TABLE agency_placements
    ADD COLUMN status text NOT NULL DEFAULT 'accepted' CHECK (status IN ('pending', 'accepted', 'rejected')),
    ADD COLUMN agency_reference text,
    ADD COLUMN accepted_at timestamptz,
    ADD COLUMN rejected_code text,
    -- The agency's side of a recall (NULL: file agency, or not recalled): 'pending' until its API confirmed
    -- it, 'delivered', or 'refused' (it answered a permanent 4xx; recall_error_code says which).
    ADD COLUMN recall_status text CHECK (recall_status IN ('pending', 'delivered', 'refused')),
    ADD COLUMN recall_error_code text,
    ADD COLUMN recall_delivered_at timestamptz,
    ADD CHECK (status <> 'rejected' OR recalled_at IS NULL);
ALTER TABLE agency_placements ALTER COLUMN status SET DEFAULT 'pending';

DROP INDEX agency_placements_active_idx;
CREATE INDEX agency_placements_active_idx ON agency_placements (agency_id)
    WHERE recalled_at IS NULL AND status <> 'rejected';
DROP INDEX agency_placements_one_active_per_loan;
CREATE UNIQUE INDEX agency_placements_one_active_per_loan ON agency_placements (loan_id)
    WHERE recalled_at IS NULL AND status <> 'rejected';
