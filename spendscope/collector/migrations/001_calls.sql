-- One row per OpenAI HTTP attempt (a "call"). The contract the API, sync, alerts and dashboard read.
-- Ids are lower-case hex. Token counts are NULL when the response did not carry them, never 0.
-- cost_usd NULL means unpriced; a failed attempt without usage costs 0.
CREATE TABLE calls (
    trace_id                      VARCHAR NOT NULL,
    span_id                       VARCHAR NOT NULL,
    start_time                    TIMESTAMPTZ NOT NULL,
    end_time                      TIMESTAMPTZ,
    day                           DATE NOT NULL,           -- UTC day of start_time
    service                       VARCHAR,                 -- resource service.name
    provider                      VARCHAR,
    operation                     VARCHAR,
    api                           VARCHAR,                 -- chat_completions, responses, embeddings, ...
    span_name                     VARCHAR,
    server_address                VARCHAR,
    request_model                 VARCHAR,
    response_model                VARCHAR,
    model                         VARCHAR NOT NULL,        -- response model when known, else request model
    project                       VARCHAR,
    organization                  VARCHAR,
    user_id                       VARCHAR,
    feature                       VARCHAR,
    tags                          MAP(VARCHAR, VARCHAR),
    stream                        BOOLEAN,
    stream_completed              BOOLEAN,
    status_code                   INTEGER,
    is_error                      BOOLEAN NOT NULL,
    error_type                    VARCHAR,
    duration_s                    DOUBLE,
    ttfc_s                        DOUBLE,
    input_tokens                  BIGINT,                  -- includes cached and cache-write input
    cached_input_tokens           BIGINT,
    cache_write_input_tokens      BIGINT,
    output_tokens                 BIGINT,                  -- includes reasoning
    reasoning_tokens              BIGINT,
    input_audio_tokens            BIGINT,
    output_audio_tokens           BIGINT,
    service_tier                  VARCHAR,
    batch                         BOOLEAN NOT NULL,
    attempt                       INTEGER,
    request_id                    VARCHAR,
    response_id                   VARCHAR,
    ratelimit_limit_requests      BIGINT,
    ratelimit_remaining_requests  BIGINT,
    ratelimit_limit_tokens        BIGINT,
    ratelimit_remaining_tokens    BIGINT,
    ratelimit_reset_requests_s    DOUBLE,
    ratelimit_reset_tokens_s      DOUBLE,
    retry_after_s                 DOUBLE,
    usage_source                  VARCHAR,
    price_id                      VARCHAR,
    pricing_status                VARCHAR,                 -- priced | unpriced | free | no_usage
    cost_usd                      DECIMAL(38, 12),
    ingested_at                   TIMESTAMPTZ NOT NULL
);
