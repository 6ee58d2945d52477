-- The ship ledger and the fence. Every shipping transaction updates the one fence row, so two
-- replicas' shipments serialise: the second commit conflicts, reruns and then sees the first one's
-- rows (a span that reached two replicas is stored once). Each shipment appends its ledger row in
-- the same transaction as its calls, so "what replica R shipped" is exact whatever crashed when.
-- Small tables: their rows stay inlined in the catalog database instead of one Parquet file each.
CREATE TABLE IF NOT EXISTS ship_fence (id INTEGER NOT NULL, seq BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS ship_log (
    ship_id      VARCHAR NOT NULL,    -- the shipment's id, also on the replica's local claims
    replica      VARCHAR NOT NULL,
    shipped_at   TIMESTAMPTZ NOT NULL,
    rows         BIGINT NOT NULL,     -- rows this shipment carried
    stored       BIGINT NOT NULL,     -- rows it added (the rest were in the lake already)
    first_start  TIMESTAMPTZ,
    last_start   TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS compactions (
    replica       VARCHAR NOT NULL,
    compacted_at  TIMESTAMPTZ NOT NULL,
    files_before  BIGINT,
    files_after   BIGINT,
    duration_s    DOUBLE
);

-- then:
-- (a second transaction: table settings cannot change in the one that creates the table)
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'ship_fence');
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'ship_log');
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'compactions');
INSERT INTO ship_fence SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM ship_fence);
