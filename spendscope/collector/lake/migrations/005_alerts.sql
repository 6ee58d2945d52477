-- The alerts' tables (local migration 020) in the lake, where every replica sees them: the leader
-- evaluates and delivers, any replica answers /api/v1/alerts. Ids are assigned by the writer (max + 1).
CREATE TABLE IF NOT EXISTS alert_state (
    rule               VARCHAR NOT NULL,
    scope_key          VARCHAR NOT NULL,                 -- '' for a rule with no group_by
    scope              JSON NOT NULL,                    -- {"project": "web", ...}
    kind               VARCHAR NOT NULL,
    state              VARCHAR NOT NULL,                 -- ok | pending | firing | resolved
    severity           VARCHAR NOT NULL,
    value              DOUBLE,
    threshold          DOUBLE,
    level              DOUBLE NOT NULL DEFAULT 0,        -- escalation rank within an incident
    message            VARCHAR,
    pending_since      TIMESTAMPTZ,
    started_at         TIMESTAMPTZ,
    resolved_at        TIMESTAMPTZ,
    last_notified_at   TIMESTAMPTZ,
    last_evaluated_at  TIMESTAMPTZ,
    incident           INTEGER NOT NULL DEFAULT 0        -- increments with each new firing
);

CREATE TABLE IF NOT EXISTS alert_events (
    event_id    BIGINT NOT NULL,
    rule        VARCHAR NOT NULL,
    scope_key   VARCHAR NOT NULL,
    incident    INTEGER NOT NULL,
    event       VARCHAR NOT NULL,                        -- firing | renotify | escalated | resolved | test
    event_at    TIMESTAMPTZ NOT NULL,
    severity    VARCHAR NOT NULL,
    value       DOUBLE,
    threshold   DOUBLE,
    message     VARCHAR
);

CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery_id      BIGINT NOT NULL,
    event_id         BIGINT NOT NULL,
    rule             VARCHAR NOT NULL,
    scope_key        VARCHAR NOT NULL,
    channel          VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,                   -- pending | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_attempt_at  TIMESTAMPTZ,
    last_error       VARCHAR,
    payload          JSON NOT NULL,                      -- the event as the channels render it
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS alert_delivery_attempts (
    delivery_id  BIGINT NOT NULL,
    attempt      INTEGER NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    ok           BOOLEAN NOT NULL,
    status_code  INTEGER,
    error        VARCHAR,
    duration_s   DOUBLE
);

CREATE TABLE IF NOT EXISTS alert_silences (
    silence_id  BIGINT NOT NULL,
    rule        VARCHAR NOT NULL,
    scope_key   VARCHAR,                                 -- NULL silences every scope of the rule
    reason      VARCHAR,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- then:
-- (a second transaction: table settings cannot change in the one that creates the table)
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'alert_state');
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'alert_events');
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'alert_deliveries');
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'alert_delivery_attempts');
CALL {lake}.set_option('data_inlining_row_limit', 1000, table_name => 'alert_silences');
