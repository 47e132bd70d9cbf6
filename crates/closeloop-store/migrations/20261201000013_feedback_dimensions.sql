-- Feedback from every angle: the dimensions of the event contract that
-- score figures group by, kept with every stored answer (alerting or not).
ALTER TABLE feedback_events
    ADD COLUMN country      text,
    ADD COLUMN segment      text,
    ADD COLUMN product_line text,
    ADD COLUMN channel      text,
    ADD COLUMN source       text;

-- Earlier answers: filled from the event kept with their case. Answers that
-- opened no case were stored without their payload; their new columns stay
-- empty (they group under "none").
UPDATE feedback_events f
SET country      = c.event->'location'->>'country',
    segment      = c.event->'customer'->>'segment',
    product_line = c.event->>'product_line',
    channel      = c.event->'journey'->>'channel',
    source       = c.event->>'source'
FROM cases c
WHERE c.event_id = f.event_id;

-- Score figures read a period of answers.
CREATE INDEX feedback_events_occurred ON feedback_events (occurred_at);
