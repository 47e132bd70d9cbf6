-- closeloop initial schema: events (idempotency), cases, append-only history,
-- transactional outbox and its delivery attempts.

-- Every accepted event, alerting or not. The primary key is the idempotency
-- guarantee: the same event_id delivered twice is processed once.
CREATE TABLE feedback_events (
    event_id         text PRIMARY KEY,
    occurred_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    alerted          boolean NOT NULL,
    nps              smallint,
    csat             smallint,
    ces              smallint,
    store_id         text,
    region           text,
    touchpoint       text NOT NULL,
    source_topic     text,
    source_partition integer,
    source_offset    bigint
);
CREATE INDEX feedback_events_received ON feedback_events (received_at);

-- One case per alert.
CREATE TABLE cases (
    id                uuid PRIMARY KEY,
    event_id          text NOT NULL UNIQUE REFERENCES feedback_events (event_id),
    status            text NOT NULL CHECK (status IN ('open', 'acknowledged', 'contacted', 'resolved', 'closed', 'reopened')),
    severity          text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    owner_id          text NOT NULL,
    owner_name        text NOT NULL,
    owner_email       text NOT NULL,
    owner_webhook_url text,
    route             text NOT NULL,
    rule_ids          text[] NOT NULL,
    channels          text[] NOT NULL,
    customer_id       text NOT NULL,
    store_id          text,
    region            text,
    touchpoint        text NOT NULL,
    nps               smallint,
    csat              smallint,
    ces               smallint,
    event             jsonb NOT NULL,
    version           integer NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    acknowledged_at   timestamptz,
    first_contact_at  timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    resolved_by       text,
    root_cause        text,
    contact_attempts  integer NOT NULL DEFAULT 0
);
CREATE INDEX cases_status ON cases (status, created_at DESC);
CREATE INDEX cases_owner ON cases (owner_id, status);
CREATE INDEX cases_store ON cases (store_id, status);

-- Append-only: who did what, when, from which status to which.
CREATE TABLE case_history (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (id),
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    note        text,
    details     jsonb NOT NULL DEFAULT 'null'
);
CREATE INDEX case_history_case ON case_history (case_id, id);

CREATE FUNCTION case_history_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'case_history is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER case_history_append_only
    BEFORE UPDATE OR DELETE ON case_history
    FOR EACH ROW EXECUTE FUNCTION case_history_is_append_only();

-- Transactional outbox: rows commit with the case change they announce.
-- id is the stable delivery id (webhook-id): the same on every retry.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    seq             bigserial NOT NULL UNIQUE,
    case_id         uuid NOT NULL REFERENCES cases (id),
    channel         text NOT NULL CHECK (channel IN ('email', 'webhook')),
    event_type      text NOT NULL,
    recipient       text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX outbox_case ON outbox (case_id, channel, seq);

CREATE TABLE delivery_attempts (
    id        bigserial PRIMARY KEY,
    outbox_id uuid NOT NULL REFERENCES outbox (id),
    attempt   integer NOT NULL,
    at        timestamptz NOT NULL,
    outcome   text NOT NULL CHECK (outcome IN ('sent', 'retry', 'dead')),
    detail    text
);
CREATE INDEX delivery_attempts_outbox ON delivery_attempts (outbox_id, id);
