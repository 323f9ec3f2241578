-- The dashboard (admin/metrics.py) counts contact steps deferred in the last 30 days by rule: without an index
-- on `at` that is a scan of every deferral kept for the whole retention period (years of them).
CREATE INDEX journal_deferrals_at_idx ON journal_deferrals (at);
