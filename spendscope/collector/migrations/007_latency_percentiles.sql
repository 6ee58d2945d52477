-- Per day and model, the p50/p95/p99 buckets of each latency histogram in rollup_latency_daily, so
-- percentiles by day and model read one row per day instead of a window over every bucket.
-- Nearest rank: the smallest bucket whose cumulative count reaches p of the day's total. Recomputed
-- with the histograms for dirty days (rollups.py); filled here from the histograms already rolled up.
CREATE TABLE rollup_latency_pct_daily (
    day     DATE NOT NULL,
    model   VARCHAR,
    metric  VARCHAR NOT NULL,
    b50     SMALLINT,
    b95     SMALLINT,
    b99     SMALLINT
);

INSERT INTO rollup_latency_pct_daily
WITH c AS (
    SELECT *,
        sum(n) OVER (PARTITION BY day, model, metric ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS cum,
        sum(n) OVER (PARTITION BY day, model, metric) AS tot
    FROM rollup_latency_daily
)
SELECT day, model, metric, min(bucket) FILTER (WHERE cum >= 0.5 * tot),
    min(bucket) FILTER (WHERE cum >= 0.95 * tot), min(bucket) FILTER (WHERE cum >= 0.99 * tot)
FROM c GROUP BY ALL;
