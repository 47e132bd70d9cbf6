-- Weekly reports: one per person and week, whichever instance gets there
-- first (the primary key), queued with its email in one transaction.
CREATE TABLE weekly_reports (
    owner_id   text NOT NULL,
    week_start timestamptz NOT NULL,
    queued_at  timestamptz NOT NULL,
    PRIMARY KEY (owner_id, week_start)
);
