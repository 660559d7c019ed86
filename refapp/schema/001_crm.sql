-- Reference schema of the watched CRM app, as the operations guides imply it.
-- Only the defaults: every exporter query that reads these tables is configuration.
-- Money is in SAR (nova-crm § postLaunchDashboard, revenue). Idempotent: safe to re-run.

-- dirt-free-crm § Cron Job Monitoring: exactly the columns the guide queries, plus a
-- serial id so readers can follow the table incrementally (high-water mark).
CREATE TABLE IF NOT EXISTS cron_job_logs (
    id            bigserial PRIMARY KEY,
    job_name      text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    status        text        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'success', 'failed')),
    error_message text
);
CREATE INDEX IF NOT EXISTS cron_job_logs_started_at ON cron_job_logs (started_at);

-- Users, sessions and events: DAU/MAU, retention day 7/30, session length, actions per
-- session (nova-crm § business.users/engagement), adoption and task completion
-- (estimate-library § Success Criteria).
CREATE TABLE IF NOT EXISTS users (
    id          bigserial PRIMARY KEY,
    email       text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS users_created_at ON users (created_at);

CREATE TABLE IF NOT EXISTS sessions (
    id          bigserial PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id),
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    actions     integer     NOT NULL DEFAULT 0 CHECK (actions >= 0)
);
CREATE INDEX IF NOT EXISTS sessions_started_at ON sessions (started_at);

-- kind: 'page_view', 'action', 'library_use', 'task_started', 'task_completed', ...
CREATE TABLE IF NOT EXISTS events (
    id          bigserial PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id),
    session_id  bigint      REFERENCES sessions (id),
    kind        text        NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_occurred_at ON events (occurred_at);

-- Customers and properties created per day (nova-crm § business.engagement).
CREATE TABLE IF NOT EXISTS customers (
    id          bigserial PRIMARY KEY,
    name        text        NOT NULL,
    created_by  bigint      REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS customers_created_at ON customers (created_at);

CREATE TABLE IF NOT EXISTS properties (
    id          bigserial PRIMARY KEY,
    customer_id bigint      NOT NULL REFERENCES customers (id),
    address     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS properties_created_at ON properties (created_at);

-- Subscriptions and payments: MRR, churn, LTV, conversion (nova-crm § business.revenue);
-- payment failures by reason (dirt-free-crm § Integration Health, P0).
CREATE TABLE IF NOT EXISTS subscriptions (
    id           bigserial PRIMARY KEY,
    user_id      bigint        NOT NULL REFERENCES users (id),
    plan         text          NOT NULL,
    mrr_sar      numeric(12,2) NOT NULL CHECK (mrr_sar >= 0),
    started_at   timestamptz   NOT NULL DEFAULT now(),
    cancelled_at timestamptz
);
CREATE INDEX IF NOT EXISTS subscriptions_started_at ON subscriptions (started_at);

CREATE TABLE IF NOT EXISTS payments (
    id              bigserial PRIMARY KEY,
    subscription_id bigint        NOT NULL REFERENCES subscriptions (id),
    amount_sar      numeric(12,2) NOT NULL,
    status          text          NOT NULL CHECK (status IN ('succeeded', 'failed', 'refunded')),
    failure_reason  text,  -- e.g. card_declined, insufficient_funds, expired_card
    created_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payments_created_at ON payments (created_at);

-- Smart matches (nova-crm § ai.smartMatches): accuracy = good outcomes among decided ones.
CREATE TABLE IF NOT EXISTS smart_matches (
    id          bigserial PRIMARY KEY,
    customer_id bigint       REFERENCES customers (id),
    score       numeric(5,2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    accepted    boolean      NOT NULL DEFAULT false,
    outcome     text         CHECK (outcome IN ('correct', 'incorrect')),  -- null: not judged yet
    created_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS smart_matches_created_at ON smart_matches (created_at);

-- Assistant (nova-crm § ai.assistant): response time, rated accuracy, satisfaction 1-5.
CREATE TABLE IF NOT EXISTS assistant_interactions (
    id               bigserial PRIMARY KEY,
    user_id          bigint      REFERENCES users (id),
    latency_seconds  double precision NOT NULL CHECK (latency_seconds >= 0),
    rated_accurate   boolean,
    satisfaction     smallint    CHECK (satisfaction BETWEEN 1 AND 5),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS assistant_interactions_created_at ON assistant_interactions (created_at);

-- Support tickets (saas-ops-module § Support System; estimate-library § Success Criteria).
CREATE TABLE IF NOT EXISTS support_tickets (
    id                bigserial PRIMARY KEY,
    user_id           bigint      REFERENCES users (id),
    category          text        NOT NULL DEFAULT 'question',
    priority          text        NOT NULL DEFAULT 'medium'
                      CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    status            text        NOT NULL DEFAULT 'open'
                      -- saas-ops-module § Support Ticket Schema's statuses ('waiting': older rows).
                      CHECK (status IN ('open', 'pending', 'in_progress', 'waiting',
                                        'waiting_customer', 'resolved', 'closed')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    first_response_at timestamptz,
    resolved_at       timestamptz
);
CREATE INDEX IF NOT EXISTS support_tickets_created_at ON support_tickets (created_at);

-- Survey answers: NPS 0-10 and satisfaction 1-5 (estimate-library § Success Criteria).
CREATE TABLE IF NOT EXISTS survey_responses (
    id          bigserial PRIMARY KEY,
    user_id     bigint      REFERENCES users (id),
    kind        text        NOT NULL CHECK (kind IN ('nps', 'satisfaction')),
    score       smallint    NOT NULL CHECK (score BETWEEN 0 AND 10),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS survey_responses_created_at ON survey_responses (created_at);

-- Estimates (estimate-library § Success Criteria, ROI): creation time and accuracy, with
-- and without the library, so the reduction and improvement can be computed.
CREATE TABLE IF NOT EXISTS estimates (
    id                bigserial PRIMARY KEY,
    user_id           bigint        REFERENCES users (id),
    used_library      boolean       NOT NULL,
    creation_seconds  double precision NOT NULL CHECK (creation_seconds >= 0),
    estimated_sar     numeric(12,2) NOT NULL,
    actual_sar        numeric(12,2),  -- known once the job is done
    created_at        timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS estimates_created_at ON estimates (created_at);

-- Outbound messages: SMS (Twilio) and email (Resend) delivery (dirt-free-crm § Integration
-- Health).
CREATE TABLE IF NOT EXISTS message_deliveries (
    id          bigserial PRIMARY KEY,
    channel     text        NOT NULL CHECK (channel IN ('sms', 'email')),
    provider    text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'failed')),
    error_code  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS message_deliveries_created_at ON message_deliveries (created_at);

-- Incoming webhooks (Stripe, Twilio, Resend): processing errors.
CREATE TABLE IF NOT EXISTS webhook_events (
    id           bigserial PRIMARY KEY,
    provider     text        NOT NULL,
    event_type   text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('processed', 'failed')),
    error        text,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_events_received_at ON webhook_events (received_at);
