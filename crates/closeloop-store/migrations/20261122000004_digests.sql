-- Alert emails of owners on an hourly or daily digest wait here until their
-- period ends; then one digest email per owner is queued in the outbox.
CREATE TABLE digest_items (
    case_id    uuid PRIMARY KEY REFERENCES cases (id),
    owner_id   text NOT NULL,
    recipient  text NOT NULL,
    locale     text NOT NULL,
    mode       text NOT NULL CHECK (mode IN ('hourly', 'daily')),
    due_at     timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    outbox_id  uuid REFERENCES outbox (id)
);
CREATE INDEX digest_items_due ON digest_items (due_at) WHERE outbox_id IS NULL;

-- A digest email belongs to an owner, not to one case.
ALTER TABLE outbox ALTER COLUMN case_id DROP NOT NULL;
