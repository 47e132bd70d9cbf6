-- Silences mute matching alerts for a period (a store during a known outage).
CREATE TABLE silences (
    id         uuid PRIMARY KEY,
    matcher    text NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL,
    expired_at timestamptz,
    CHECK (ends_at > starts_at)
);
CREATE INDEX silences_active ON silences (ends_at) WHERE expired_at IS NULL;

-- Alerts a silence muted: recorded, never dropped.
CREATE TABLE silenced_alerts (
    event_id   text PRIMARY KEY REFERENCES feedback_events (event_id),
    silence_id uuid NOT NULL REFERENCES silences (id),
    rule_ids   text[] NOT NULL,
    owner_id   text NOT NULL,
    severity   text NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX silenced_alerts_silence ON silenced_alerts (silence_id);
