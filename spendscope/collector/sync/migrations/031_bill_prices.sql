-- Unit prices the bill implies (spendscope.pricing.bill): each line item of the Costs API, summed per
-- UTC day over projects and keys, read as a model, a kind of usage and a tier, with amount ÷ quantity
-- in the unit of a price row. Derived from cost_buckets after every sync of the costs (and at start,
-- against the price table then in force), so the table is replaced whole each time.
CREATE TABLE bill_prices (
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
