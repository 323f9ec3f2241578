-- When the loan's workflow next acts by itself (collections time), as of its last portfolio snapshot: the
-- instant of the durable timer it was about to wait on. NULL: unknown (a snapshot from before this column, or
-- a workflow waiting only for a signal). The stuck-loans gauge (observability/stuck.py) counts open cycles
-- whose wake time, in real time, passed more than a grace period ago with no snapshot since: a workflow that
-- woke and did anything would have written a newer snapshot with a later wake time.
ALTER TABLE portfolio ADD COLUMN wake_at timestamptz;
CREATE INDEX portfolio_open_wake_idx ON portfolio (wake_at) WHERE latest AND outcome IS NULL;
