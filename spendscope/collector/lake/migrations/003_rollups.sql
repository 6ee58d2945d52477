-- The daily rollups of the lake's calls (the local migrations 003, 005-007, same columns), computed by
-- the leader. rollup_state: a shipment marks the days it touched dirty (marked_at), the leader's
-- rollup pass cleans them. Reads treat those days, and the days of a replica's unshipped rows, as
-- dirty and read them from calls.
CREATE TABLE IF NOT EXISTS rollup_daily (
    day                       DATE NOT NULL,
    service                   VARCHAR,
    provider                  VARCHAR,
    api                       VARCHAR,
    model                     VARCHAR,
    request_model             VARCHAR,
    project                   VARCHAR,
    feature                   VARCHAR,
    calls                     BIGINT NOT NULL,
    errors                    BIGINT NOT NULL,
    input_tokens              HUGEINT,
    cached_input_tokens       HUGEINT,
    cache_write_input_tokens  HUGEINT,
    output_tokens             HUGEINT,
    reasoning_tokens          HUGEINT,
    input_audio_tokens        HUGEINT,
    output_audio_tokens       HUGEINT,
    cost_usd                  DECIMAL(38, 12),
    priced_calls              BIGINT NOT NULL,
    unpriced_calls            BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS rollup_state (
    day        DATE NOT NULL,
    dirty      BOOLEAN NOT NULL,
    rolled_at  TIMESTAMPTZ,
    marked_at  TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS rollup_latency_daily (
    day     DATE NOT NULL,
    model   VARCHAR,
    metric  VARCHAR NOT NULL,
    bucket  SMALLINT NOT NULL,
    n       BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS rollup_insights_daily (
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
    priced_input_tokens         HUGEINT,
    priced_cached_input_tokens  HUGEINT,
    priced_output_tokens        HUGEINT,
    first_error_at              TIMESTAMPTZ,
    last_error_at               TIMESTAMPTZ,
    limit_requests              BIGINT,
    min_remaining_requests      BIGINT,
    limit_tokens                BIGINT,
    min_remaining_tokens        BIGINT,
    requests_headroom_pct       DOUBLE,
    tokens_headroom_pct         DOUBLE
);

CREATE TABLE IF NOT EXISTS rollup_latency_pct_daily (
    day     DATE NOT NULL,
    model   VARCHAR,
    metric  VARCHAR NOT NULL,
    b50     SMALLINT,
    b95     SMALLINT,
    b99     SMALLINT
);

-- then:
-- (a second transaction: table settings cannot change in the one that creates the table)
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'rollup_state');
