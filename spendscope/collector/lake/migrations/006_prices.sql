-- Local migrations 030 and 031 in the lake: every call keeps its price's origin (a lake made before
-- has no such column yet; one made since has it from the declaration), the daily rollup is keyed by
-- it too (made again; every day is rolled again, and read from calls until then), and the unit
-- prices the bill implies, derived by the leader after each sync of the costs, read by every replica.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS price_origin VARCHAR;
UPDATE calls SET price_origin = CASE
    WHEN price_id LIKE 'openai:%' THEN 'reviewed'
    WHEN price_id LIKE 'override:%' THEN 'override'
    WHEN price_id LIKE 'extra:%' THEN 'extra:' || regexp_extract(price_id, '^extra:([^:]*):', 1)
    WHEN price_id LIKE 'bill:%' THEN 'bill'
END
WHERE price_id IS NOT NULL AND price_origin IS NULL;

DROP TABLE IF EXISTS rollup_daily;
CREATE TABLE rollup_daily (
    day                       DATE NOT NULL,
    service                   VARCHAR,
    provider                  VARCHAR,
    api                       VARCHAR,
    model                     VARCHAR,
    request_model             VARCHAR,
    project                   VARCHAR,
    feature                   VARCHAR,
    price_origin              VARCHAR,
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
UPDATE rollup_state SET dirty = true;

CREATE TABLE IF NOT EXISTS bill_prices (
    day               DATE NOT NULL,
    line_item         VARCHAR NOT NULL,
    amount            DECIMAL(38, 12),        -- USD, summed; NULL when a part had none
    quantity          DECIMAL(38, 12),
    quantity_unit     VARCHAR,                -- as billed: tokens, 1000_tokens, characters, ...
    currency          VARCHAR,
    model             VARCHAR,                -- as the line item names it; NULL for tools and storage
    kind              VARCHAR,                -- input, cached_input, ..., characters, seconds, images, ...
    tier              VARCHAR NOT NULL,       -- default | batch | flex | priority
    unit              VARCHAR,                -- per_mtok, per_1m_characters, per_minute, per_image, per_<unit>
    unit_price        DECIMAL(38, 18),        -- amount ÷ quantity in that unit; NULL when none follows
    status            VARCHAR NOT NULL,       -- prices | compared | recorded | ignored
    reason            VARCHAR,                -- why it prices nothing (recorded, ignored)
    price_id          VARCHAR,                -- the bill row it is part of (prices), or the table's row (compared)
    price_origin      VARCHAR,                -- that row's origin: bill, or reviewed | override | extra:<file>
    table_unit_price  DECIMAL(38, 18),        -- compared: the table's price for the same kind and tier
    drift             DECIMAL(38, 12),        -- compared: (unit_price - table_unit_price) / table_unit_price
    derived_at        TIMESTAMPTZ NOT NULL
);
