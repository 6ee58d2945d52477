-- Daily rollup of calls so long ranges stay fast. Recomputed per day by the rollup job; a day with
-- new calls since then is marked dirty in rollup_state and read from calls until re-rolled.
-- user_id is left out on purpose: its cardinality would make the rollup as large as the table.
CREATE TABLE rollup_daily (
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

CREATE TABLE rollup_state (
    day        DATE PRIMARY KEY,
    dirty      BOOLEAN NOT NULL,
    rolled_at  TIMESTAMPTZ
);
