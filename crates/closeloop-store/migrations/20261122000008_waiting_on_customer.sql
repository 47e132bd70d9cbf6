-- waiting_on_customer: the owner waits for the customer; still an active case.
ALTER TABLE cases DROP CONSTRAINT cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check
    CHECK (status IN ('open', 'acknowledged', 'contacted', 'resolved', 'closed', 'reopened', 'waiting_on_customer'));
DROP INDEX cases_key_active;
CREATE INDEX cases_key_active ON cases (case_key, created_at DESC)
    WHERE status IN ('open', 'acknowledged', 'contacted', 'reopened', 'waiting_on_customer');
