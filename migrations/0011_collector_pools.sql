-- Collector pools: each user works the collector_tasks of some pools (collector_tasks.pool, which the
-- workflow sets to the loan's segment). The work queue shows a collector the open tasks due now in their
-- pools; supervisors see every pool. Users from before this migration work the 'default' pool.
ALTER TABLE users
    ADD COLUMN pools text[] NOT NULL DEFAULT '{default}'
        CHECK (cardinality(pools) >= 1 AND array_position(pools, NULL) IS NULL);

-- The queue's question: open tasks of these pools that are due now.
CREATE INDEX collector_tasks_open_pool_due_idx ON collector_tasks (pool, due_at) WHERE status = 'open';
