-- The price table versions the collector has loaded, and every repricing it ran.
CREATE TABLE price_versions (
    version    VARCHAR PRIMARY KEY,
    loaded_at  TIMESTAMPTZ NOT NULL,
    rows       JSON NOT NULL
);

CREATE TABLE reprice_runs (
    run_at          TIMESTAMPTZ NOT NULL,
    since           TIMESTAMPTZ NOT NULL,
    price_version   VARCHAR NOT NULL,
    calls_examined  BIGINT NOT NULL,
    calls_changed   BIGINT NOT NULL,
    cost_before     DECIMAL(38, 12),
    cost_after      DECIMAL(38, 12)
);
