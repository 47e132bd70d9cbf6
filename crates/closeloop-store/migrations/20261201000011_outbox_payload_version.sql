-- The format of each outbox payload (closeloop_wire::OUTBOX_VERSION), so a
-- build reads every version it knows and refuses the others by name. Rows
-- written before this column are version 1.
ALTER TABLE outbox ADD COLUMN payload_version smallint NOT NULL DEFAULT 1;
