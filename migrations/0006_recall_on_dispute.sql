-- A dispute that stops collection also takes the account back from the agency: recall reason 'disputed'.
ALTER TABLE agency_placements DROP CONSTRAINT IF EXISTS agency_placements_recall_reason_check;
ALTER TABLE agency_placements ADD CONSTRAINT agency_placements_recall_reason_check
    CHECK (recall_reason IN ('paid', 'closed', 'expired', 'escalated', 'written_off', 'disputed'));
