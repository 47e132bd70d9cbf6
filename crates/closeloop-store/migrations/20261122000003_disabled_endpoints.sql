-- Webhook endpoints that answered 410 Gone: nothing more is sent to them
-- until ops re-enable them.
CREATE TABLE disabled_endpoints (
    url         text PRIMARY KEY,
    disabled_at timestamptz NOT NULL,
    reason      text NOT NULL
);
