-- The manager's web app: sign-in links sent by email (single use, minutes)
-- and the sessions they open. Only SHA-256 hashes of the secrets are kept.
CREATE TABLE sign_in_links (
    token_hash bytea PRIMARY KEY,
    owner_id   text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX sign_in_links_owner ON sign_in_links (owner_id, created_at DESC);

CREATE TABLE web_sessions (
    id           uuid PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('admin', 'ops', 'manager')),
    -- The owner signed in (managers always; ops and admins when they are
    -- people of the directory).
    owner_id     text,
    -- The actor recorded in case history.
    name         text NOT NULL,
    locale       text NOT NULL,
    -- Sent back by every form of the session (CSRF).
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    revoked_at   timestamptz,
    CHECK (role <> 'manager' OR owner_id IS NOT NULL)
);
CREATE INDEX web_sessions_owner ON web_sessions (owner_id) WHERE revoked_at IS NULL;

-- The inbox reads the active cases of a scope.
CREATE INDEX cases_active_region ON cases (region, store_id)
    WHERE status IN ('open', 'acknowledged', 'contacted', 'reopened', 'waiting_on_customer');
CREATE INDEX cases_customer ON cases (customer_id, created_at DESC);
