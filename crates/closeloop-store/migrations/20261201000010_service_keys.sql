-- Keys the service makes itself at first start when none is configured
-- (the one-click link key): shared by every instance through the database,
-- so no public default key ever signs anything.
CREATE TABLE service_keys (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
