-- SLA clocks: the deadlines of each case (business time, computed by the
-- core from the owner's calendar), what the scheduler already did, and when
-- it must look at the case again.
ALTER TABLE cases
    ADD COLUMN deadlines        jsonb,
    ADD COLUMN next_sla_at      timestamptz,
    ADD COLUMN sla_reminded     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN escalation_level smallint NOT NULL DEFAULT 0,
    ADD COLUMN overdue_since    timestamptz,
    -- A pause (waiting_on_customer) and its end: the scheduler moves the
    -- deadlines by the business time the pause took.
    ADD COLUMN paused_at        timestamptz,
    ADD COLUMN resumed_at       timestamptz,
    -- A reopened case restarts its clocks from this instant.
    ADD COLUMN clocks_restart_at timestamptz,
    -- The recovery loop: a later promoter response from the same customer.
    ADD COLUMN recovered_at     timestamptz,
    ADD COLUMN recovery_event_id text;
CREATE INDEX cases_sla_due ON cases (next_sla_at) WHERE next_sla_at IS NOT NULL;
CREATE INDEX cases_key_resolved ON cases (case_key, resolved_at DESC)
    WHERE status IN ('resolved', 'closed');

-- People told when a case is acknowledged or resolved: the owners it was
-- escalated to, and anyone subscribed.
CREATE TABLE case_watchers (
    case_id  uuid NOT NULL REFERENCES cases (id),
    email    text NOT NULL,
    name     text NOT NULL,
    locale   text NOT NULL,
    reason   text NOT NULL CHECK (reason IN ('escalation', 'subscribed')),
    added_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, email)
);

-- API tokens: only a SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('admin', 'ops', 'manager')),
    owner_id   text,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    last_used_at timestamptz,
    CHECK (role <> 'manager' OR owner_id IS NOT NULL)
);
