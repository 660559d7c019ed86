// UX and support: the support queue (saas-ops-module § Support System: priorities, first
// response and resolution) and the user-experience KPIs of estimate-library's UX dashboard
// (task completion, satisfaction, NPS), from the business exporter's pack.
function(s)
local g = s.g;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-ux-support', 'UX and support', 'support', [jobs.business, jobs.app], tags=['ux'],
                  description='Support tickets and user-experience KPIs.');
local sel = b.sel();
local urgent = { priority: 'urgent' };

b.dashboard([
  g.row('Support queue'),
  b.signal('support_open_urgent', 'Urgent tickets open', type='stat', w=6, h=6, match=urgent),
  b.signal('support_tickets_month', 'Tickets opened (30 d)', type='stat', w=6, h=6),
  g.bargauge('Open tickets by priority',
             'Tickets not resolved or closed (open, in progress, waiting) per priority; every priority is always reported, 0 included.',
             [g.target('sum by (priority) (business_support_open_tickets{%s})' % sel, '{{priority}}')],
             'short', w=12, h=6),

  b.signal('support_open_urgent', 'Open urgent tickets over time', w=12, match=urgent),
  g.timeseries('Open tickets by priority over time',
               'Open tickets per priority (urgent, high, medium, low).',
               [g.target('sum by (priority) (business_support_open_tickets{%s})' % sel, '{{priority}}')],
               'short', w=12, stack=true),
  b.signal('support_tickets_month', 'Tickets opened in the last 30 days', w=12),
  g.timeseries('Tickets opened per day',
               'Support tickets created in the last 24 hours (ticket volume, estimate-library § User Satisfaction: support ticket volume).',
               [g.target('business_support_tickets_per_day{%s}' % sel, '{{instance}}')], 'short', w=12),

  g.timeseries('Ticket API requests by status',
               'POST /api/support/tickets of the app per HTTP status: 201 created, 400 invalid form, 401 not signed in (saas-ops-module § Support API Routes › /api/support/tickets). No guide states a rate level.',
               [g.target('sum by (status) (rate(http_requests_total{%s,route="/api/support/tickets"}[$__rate_interval]))' % sel, '{{status}}')],
               'reqps', w=24),

  g.row('Response times'),
  g.timeseries('Time to first response',
               'Average time from creation to the first answer, over the tickets of the last 30 days that were answered (saas-ops-module § Support System: first_response_at). No guide states a level.',
               [g.target('business_support_first_response_seconds{%s}' % sel, '{{instance}}')], 's', w=12),
  g.timeseries('Time to resolution',
               'Average time from creation to resolution, over the tickets of the last 30 days that were resolved (saas-ops-module § Support System: resolved_at). No guide states a level.',
               [g.target('business_support_resolution_seconds{%s}' % sel, '{{instance}}')], 's', w=12),

  g.row('User experience'),
  b.signal('business_task_completion', 'Task completion', w=8),
  b.signal('business_user_satisfaction', 'User satisfaction (CSAT, 30 d)', w=8),
  b.signal('business_nps', 'NPS (average 0-10 answer, 30 d)', w=8),
  b.signal('ai_assistant_satisfaction', 'Assistant satisfaction (1-5)', w=8),
  b.signal('business_actions_per_session', 'Actions per session', w=8),
  b.signal('business_session_duration', 'Average session duration', w=8),
])
