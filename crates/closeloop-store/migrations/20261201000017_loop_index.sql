-- Loop health over months of cases without reading the cases' rows.
--
-- The stages' deadlines as columns, kept by PostgreSQL from the deadlines
-- the core computed (written RFC 3339 with their offset, so reading them
-- does not depend on the session's time zone: the function is immutable
-- in fact, as a generated column needs).
CREATE FUNCTION closeloop_due_at(deadlines jsonb, stage text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (deadlines -> stage ->> 'due_at')::timestamptz;

ALTER TABLE cases
    ADD COLUMN ack_due_at     timestamptz GENERATED ALWAYS AS (closeloop_due_at(deadlines, 'acknowledge')) STORED,
    ADD COLUMN contact_due_at timestamptz GENERATED ALWAYS AS (closeloop_due_at(deadlines, 'first_contact')) STORED,
    ADD COLUMN resolve_due_at timestamptz GENERATED ALWAYS AS (closeloop_due_at(deadlines, 'resolve')) STORED;

-- Every column loop figures and root causes read, by opening time: an
-- index-only scan of a period (metrics.rs).
CREATE INDEX cases_loop ON cases (created_at) INCLUDE (
    owner_id, store_id, region, status, acknowledged_at, first_contact_at, resolved_at,
    ack_due_at, contact_due_at, resolve_due_at, overdue_since, recovered_at,
    ack_business_seconds, contact_business_seconds, resolve_business_seconds, root_cause);

-- Open and overdue cases now, per scope.
CREATE INDEX cases_active_scope ON cases (region, store_id, owner_id) INCLUDE (overdue_since)
    WHERE status IN ('open', 'acknowledged', 'contacted', 'reopened', 'waiting_on_customer');
