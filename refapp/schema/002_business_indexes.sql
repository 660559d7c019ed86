-- Indexes the business exporter's default query pack relies on (docs/exporters/business.md).
-- Idempotent: safe to re-run.

-- Open tickets by priority run every minute: without this partial index that query reads
-- every ticket ever filed (saas-ops-module § Support System).
-- (A new name: the earlier index listed open statuses, missing pending and waiting_customer.)
CREATE INDEX IF NOT EXISTS support_tickets_unresolved_priority
    ON support_tickets (priority) WHERE status NOT IN ('resolved', 'closed');

-- Conversion joins recent sign-ups to their subscriptions: index the foreign key.
CREATE INDEX IF NOT EXISTS subscriptions_user_id ON subscriptions (user_id);
