-- Daily latency histograms per model, so percentiles over long ranges do not scan every call.
-- bucket = floor(16 * log2(seconds * 1000)): 1/16-octave buckets, about ±2.2% around their middle.
-- Successful calls only; metric is 'duration' (duration_s) or 'ttfc' (ttfc_s). Same dirty-day
-- bookkeeping as rollup_daily (rollup_state).
CREATE TABLE rollup_latency_daily (
    day     DATE NOT NULL,
    model   VARCHAR,
    metric  VARCHAR NOT NULL,
    bucket  SMALLINT NOT NULL,
    n       BIGINT NOT NULL
);
