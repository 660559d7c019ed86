// AI: smart matches and the assistant. KPIs from the business exporter's pack (last 24 h of
// the smart_matches and assistant_interactions tables) next to what the app's API sees of the
// same features (requests, errors and latency of their routes).
function(s)
local g = s.g;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-ai', 'AI', 'ai', [jobs.business, jobs.app],
                  description='Smart matches and the AI assistant (nova-crm § 1.1 Comprehensive Monitoring Dashboard › ai).');
local sel = b.sel();
local aiRoutes = 'route=~"/api/smart-matches|/api/assistant/query"';

b.dashboard([
  g.row('Now'),
  b.signal('ai_matches_per_day', 'Smart matches (24 h)', type='stat', w=6, h=4),
  b.signal('ai_match_accuracy', 'Match accuracy', type='stat', w=6, h=4),
  b.signal('ai_assistant_usage', 'Assistant queries (24 h)', type='stat', w=6, h=4),
  b.signal('ai_assistant_latency', 'Assistant response time (mean)', type='stat', w=6, h=4),

  g.row('Smart matches'),
  b.signal('ai_matches_per_day', 'Smart matches created (24 h)', w=12),
  b.signal('ai_match_score', 'Average match score (0-100)', w=12),
  b.signal('ai_match_acceptance', 'Accepted matches', w=12),
  b.signal('ai_match_accuracy', 'Matches judged correct', w=12),

  g.row('Assistant'),
  b.signal('ai_assistant_usage', 'Assistant queries (24 h)', w=12),
  b.signal('ai_assistant_latency', 'Assistant response time (24 h mean and p95)', w=12,
           legend='mean {{instance}}',
           extraTargets=[g.target('business_assistant_response_p95_seconds{%s}' % sel, 'p95 {{instance}}')]),
  b.signal('ai_assistant_accuracy', 'Answers rated accurate', w=12),
  b.signal('ai_assistant_satisfaction', 'Assistant satisfaction (1-5)', w=12),

  g.row('AI endpoints of the API'),
  g.timeseries('Requests by route and status',
               'Requests per second to the smart-match and assistant routes by HTTP status: load on the AI features and how much of it fails.',
               [g.target('sum by (route, status) (rate(http_requests_total{%s,%s}[$__rate_interval]))' % [sel, aiRoutes],
                         '{{route}} {{status}}')], 'reqps', w=12),
  g.timeseries('p95 latency by route',
               'Server-side 95th percentile duration of the smart-match and assistant requests.',
               [g.target('histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket{%s,%s}[$__rate_interval])))' % [sel, aiRoutes],
                         '{{route}}')], 's', w=12),
])
