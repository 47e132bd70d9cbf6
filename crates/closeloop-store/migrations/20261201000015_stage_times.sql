-- Loop health's times to acknowledge, to first contact and to resolve, in
-- business time of the owner's calendar (seconds), recorded by the
-- transition that reaches each stage (closeloop_core::durations).
-- waited_seconds: the open time of the case's ended pauses (waiting on the
-- customer) since its clocks last started, deducted from the times.
ALTER TABLE cases
    ADD COLUMN waited_seconds           bigint NOT NULL DEFAULT 0,
    ADD COLUMN ack_business_seconds     bigint,
    ADD COLUMN contact_business_seconds bigint,
    ADD COLUMN resolve_business_seconds bigint,
    ADD COLUMN times_recorded           boolean NOT NULL DEFAULT true;

-- Cases that reached a stage before: the service computes their times at
-- start-up, in their owner's calendar (it knows the calendars, SQL does not).
UPDATE cases SET times_recorded = false
WHERE acknowledged_at IS NOT NULL OR first_contact_at IS NOT NULL OR resolved_at IS NOT NULL;
CREATE INDEX cases_times_missing ON cases (id) WHERE NOT times_recorded;
