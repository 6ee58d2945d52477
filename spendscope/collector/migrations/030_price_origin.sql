-- Every call keeps where its price came from next to the price row's id: reviewed (the bundled
-- table), override, extra:<file>, or bill (derived from the Costs API's line items). Calls stored
-- before read it from their price_id, whose first part is the row's origin ("openai" is the
-- reviewed table; an extra table's label is the part up to the next colon).
ALTER TABLE calls ADD COLUMN price_origin VARCHAR;
UPDATE calls SET price_origin = CASE
    WHEN price_id LIKE 'openai:%' THEN 'reviewed'
    WHEN price_id LIKE 'override:%' THEN 'override'
    WHEN price_id LIKE 'extra:%' THEN 'extra:' || regexp_extract(price_id, '^extra:([^:]*):', 1)
    WHEN price_id LIKE 'bill:%' THEN 'bill'
END
WHERE price_id IS NOT NULL;

-- Spend by price origin is answered from the daily rollup too. The rollup is derived data: it is
-- made again with the new key among the others, and every day is rolled again (until then a day is
-- read from calls, so every answer stays exact).
DROP TABLE rollup_daily;
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
