-- Coalescing: alerts with the same case key attach to the active case.
ALTER TABLE cases ADD COLUMN case_key text;
CREATE INDEX cases_key_active ON cases (case_key, created_at DESC)
    WHERE status IN ('open', 'acknowledged', 'contacted', 'reopened');

-- Every event of a case: the one that opened it and those attached later.
CREATE TABLE case_events (
    event_id    text PRIMARY KEY REFERENCES feedback_events (event_id),
    case_id     uuid NOT NULL REFERENCES cases (id),
    attached_at timestamptz NOT NULL
);
CREATE INDEX case_events_case ON case_events (case_id);
INSERT INTO case_events (event_id, case_id, attached_at) SELECT event_id, id, created_at FROM cases;
