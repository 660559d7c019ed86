-- Tables two guides' own checks read, for the business pack to watch them.
-- Idempotent: safe to re-run.

-- dirt-free-crm § First Hour › Database Health: its critical test queries read missed
-- opportunities (pending ones, and a 30-day count by status); the pack times them.
CREATE TABLE IF NOT EXISTS missed_opportunities (
    id          bigserial PRIMARY KEY,
    customer_id bigint      REFERENCES customers (id),
    status      text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'contacted', 'converted', 'dismissed')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS missed_opportunities_created_at ON missed_opportunities (created_at);
CREATE INDEX IF NOT EXISTS missed_opportunities_status ON missed_opportunities (status);

-- estimate-library § Database Optimization: the daily script deletes audit rows older
-- than 90 days; the pack reads the oldest row (through the created_at index).
CREATE TABLE IF NOT EXISTS audit_logs (
    id          bigserial PRIMARY KEY,
    user_id     bigint      REFERENCES users (id),
    action      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_logs_created_at ON audit_logs (created_at);
