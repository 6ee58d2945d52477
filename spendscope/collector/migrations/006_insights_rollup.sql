-- Daily rollup for the dashboard's /api/v1/insights/* endpoints, so they do not scan calls. Keys are
-- every filter and breakdown dimension except user_id (its cardinality) and tags (a map), plus status
-- and error type. The measures are declared in rollups.py (INSIGHTS). Same dirty-day bookkeeping as
-- rollup_daily: a day is read from calls until rollup_state says it is clean.
CREATE TABLE rollup_insights_daily (
    day                         DATE NOT NULL,
    service                     VARCHAR,
    api                         VARCHAR,
    model                       VARCHAR,
    project                     VARCHAR,
    feature                     VARCHAR,
    service_tier                VARCHAR,
    batch                       BOOLEAN,
    status_code                 INTEGER,
    error_type                  VARCHAR,
    calls                       BIGINT NOT NULL,
    errors                      BIGINT NOT NULL,
    rate_limited                BIGINT NOT NULL,
    input_tokens                HUGEINT,
    cached_input_tokens         HUGEINT,
    output_tokens               HUGEINT,
    reasoning_tokens            HUGEINT,
    cost_usd                    DECIMAL(38, 12),
    priced_calls                BIGINT NOT NULL,
    unpriced_calls              BIGINT NOT NULL,
    priced_input_tokens         HUGEINT,   -- token sums over priced calls only (savings)
    priced_cached_input_tokens  HUGEINT,
    priced_output_tokens        HUGEINT,
    first_error_at              TIMESTAMPTZ,
    last_error_at               TIMESTAMPTZ,
    limit_requests              BIGINT,    -- max seen
    min_remaining_requests      BIGINT,
    limit_tokens                BIGINT,    -- max seen
    min_remaining_tokens        BIGINT,
    requests_headroom_pct       DOUBLE,    -- min of remaining / limit
    tokens_headroom_pct         DOUBLE
);

-- Days rolled up before this table existed have no rows in it: flag every day that has calls, so the
-- rollup job fills it (and until then those days are read from calls, exactly).
INSERT INTO rollup_state (day, dirty) SELECT DISTINCT day, true FROM calls
ON CONFLICT (day) DO UPDATE SET dirty = true;
