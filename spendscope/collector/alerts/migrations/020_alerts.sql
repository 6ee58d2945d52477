-- Alerts (spendscope.collector.alerts). One row per (rule, scope) instance holds its current state, so a
-- restart neither re-sends nor forgets; events are what happened; deliveries are the outbox the
-- delivery worker drains, written in the same transaction as the state change that caused them.
CREATE SEQUENCE alert_event_seq START 1;
CREATE SEQUENCE alert_delivery_seq START 1;
CREATE SEQUENCE alert_silence_seq START 1;

CREATE TABLE alert_state (
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
    incident           INTEGER NOT NULL DEFAULT 0,       -- increments with each new firing
    PRIMARY KEY (rule, scope_key)
);

CREATE TABLE alert_events (
    event_id    BIGINT PRIMARY KEY,
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

CREATE TABLE alert_deliveries (
    delivery_id      BIGINT PRIMARY KEY,
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

CREATE TABLE alert_delivery_attempts (
    delivery_id  BIGINT NOT NULL,
    attempt      INTEGER NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    ok           BOOLEAN NOT NULL,
    status_code  INTEGER,
    error        VARCHAR,
    duration_s   DOUBLE,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE alert_silences (
    silence_id  BIGINT PRIMARY KEY,
    rule        VARCHAR NOT NULL,
    scope_key   VARCHAR,                                 -- NULL silences every scope of the rule
    reason      VARCHAR,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
