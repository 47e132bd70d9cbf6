-- One-click email links are single use: a nonce is recorded when its
-- action is applied, in the same transaction.
CREATE TABLE used_links (
    nonce   text PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    action  text NOT NULL,
    used_at timestamptz NOT NULL
);
