-- Every hold binds the agency, not only a dispute: Breathing Space, hardship and cease take the account back
-- too (recall reason 'hold').
ALTER TABLE agency_placements DROP CONSTRAINT IF EXISTS agency_placements_recall_reason_check;
ALTER TABLE agency_placements ADD CONSTRAINT agency_placements_recall_reason_check
    CHECK (recall_reason IN ('paid', 'closed', 'expired', 'escalated', 'written_off', 'disputed', 'hold'));
