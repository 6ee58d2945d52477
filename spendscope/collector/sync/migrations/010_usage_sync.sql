-- OpenAI organization Usage and Costs API, as last read by the sync (spendscope.collector.sync).
-- A bucket re-read replaces every stored row whose bucket starts inside it, so revised and vanished
-- groups are handled and a repeated read changes nothing. Metric columns are NULL when the API did
-- not send the field (older API versions), never 0.
CREATE TABLE usage_buckets (
    endpoint                   VARCHAR NOT NULL,        -- completions, embeddings, images, ...
    bucket_start               TIMESTAMPTZ NOT NULL,
    bucket_end                 TIMESTAMPTZ NOT NULL,
    bucket_start_s             BIGINT NOT NULL,         -- unix seconds, for exact comparisons
    bucket_end_s               BIGINT NOT NULL,
    day                        DATE NOT NULL,           -- UTC day of bucket_start
    group_key                  VARCHAR NOT NULL,        -- canonical JSON of the dimensions below
    project_id                 VARCHAR,
    user_id                    VARCHAR,
    api_key_id                 VARCHAR,
    model                      VARCHAR,
    batch                      BOOLEAN,
    service_tier               VARCHAR,
    dims                       JSON,                    -- other dimensions (size, source, context_level, ...)
    num_model_requests         BIGINT,
    input_tokens               BIGINT,                  -- includes cached and cache-write input
    cached_input_tokens        BIGINT,
    cache_write_input_tokens   BIGINT,
    output_tokens              BIGINT,
    input_audio_tokens         BIGINT,                  -- normalized: includes cached audio (see parse.py)
    cached_input_audio_tokens  BIGINT,
    output_audio_tokens        BIGINT,
    input_image_tokens         BIGINT,                  -- normalized: includes cached image input
    cached_input_image_tokens  BIGINT,
    output_image_tokens        BIGINT,
    images                     BIGINT,
    characters                 BIGINT,
    seconds                    BIGINT,
    usage_bytes                BIGINT,
    num_sessions               BIGINT,
    num_requests               BIGINT,
    estimated_cost_usd         DECIMAL(38, 12),         -- priced with our table; NULL = unpriced
    price_id                   VARCHAR,
    pricing_status             VARCHAR,                 -- priced | unpriced | free | not_priced (tools, storage)
    raw                        JSON NOT NULL,           -- the result object as received
    PRIMARY KEY (endpoint, bucket_start_s, group_key)
);

CREATE TABLE cost_buckets (
    bucket_start    TIMESTAMPTZ NOT NULL,
    bucket_end      TIMESTAMPTZ NOT NULL,
    bucket_start_s  BIGINT NOT NULL,
    bucket_end_s    BIGINT NOT NULL,
    day             DATE NOT NULL,
    group_key       VARCHAR NOT NULL,
    project_id      VARCHAR,
    api_key_id      VARCHAR,
    line_item       VARCHAR,
    amount          DECIMAL(38, 12),                   -- NULL when the API sent no usable value
    currency        VARCHAR,                           -- lower-case ISO 4217 ("usd")
    quantity        DECIMAL(38, 12),
    quantity_unit   VARCHAR,
    raw             JSON NOT NULL,
    PRIMARY KEY (bucket_start_s, group_key)
);

-- One row per sync run, kept for audit and for the sync-failure alert.
CREATE TABLE sync_runs (
    run_id          BIGINT PRIMARY KEY,
    trigger         VARCHAR NOT NULL,                  -- schedule | manual | startup
    status          VARCHAR NOT NULL,                  -- running | ok | error | interrupted
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    duration_s      DOUBLE,
    window_start    TIMESTAMPTZ,
    window_end      TIMESTAMPTZ,
    requests        BIGINT NOT NULL DEFAULT 0,
    retries         BIGINT NOT NULL DEFAULT 0,
    pages           BIGINT NOT NULL DEFAULT 0,
    buckets         BIGINT NOT NULL DEFAULT 0,
    rows_read       BIGINT NOT NULL DEFAULT 0,
    rows_inserted   BIGINT NOT NULL DEFAULT 0,
    rows_updated    BIGINT NOT NULL DEFAULT 0,
    rows_deleted    BIGINT NOT NULL DEFAULT 0,
    errors          BIGINT NOT NULL DEFAULT 0,
    error           VARCHAR,                           -- the first error, readable
    details         JSON                               -- per-endpoint counts and errors
);

-- Where each endpoint's reading stands: everything before synced_through is stored; while a read is
-- under way resume_from is the first bucket not yet committed, so a crashed run resumes there.
CREATE TABLE sync_state (
    endpoint        VARCHAR PRIMARY KEY,               -- usage/completions, ..., costs
    synced_through  TIMESTAMPTZ,
    resume_from     TIMESTAMPTZ,
    run_id          BIGINT,
    updated_at      TIMESTAMPTZ NOT NULL
);
