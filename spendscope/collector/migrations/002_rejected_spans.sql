-- GenAI spans the collector could not normalize: kept with the reason, never dropped silently.
CREATE TABLE rejected_spans (
    received_at  TIMESTAMPTZ NOT NULL,
    trace_id     VARCHAR,
    span_id      VARCHAR,
    service      VARCHAR,
    span_name    VARCHAR,
    reason       VARCHAR NOT NULL,
    attributes   JSON                                      -- the span's attributes, truncated
);
