// API and errors: the app's request metrics (middleware) and its health probes.
function(s)
local g = s.g;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-api', 'API and errors', 'api', [jobs.app, jobs.appProbe], tags=['health'],
                  description='Latency, errors, throughput against last week and the health probes of the app.');
local sel = b.sel();

local quantile(q) =
  'histogram_quantile(%g, sum by (job, route, le) (rate(http_request_duration_seconds_bucket{%s}[$__rate_interval])))' % [q, sel];
local requestRate(offset='') =
  'sum by (job) (rate(http_requests_total{%s}[$__rate_interval]%s))' % [sel, offset];

b.dashboard([
  g.row('Now'),
  b.signal('api_error_ratio', 'Error ratio (5xx)', type='stat', w=4, h=4),
  b.signal('api_latency_p95', 'p95 latency', type='stat', w=4, h=4),
  b.signal('api_latency_mean', 'Mean latency', type='stat', w=4, h=4),
  b.signal('api_throughput', 'Requests per second', type='stat', w=4, h=4, unit='reqps'),
  b.signal('api_availability_1d', 'Availability (1 d, non-5xx)', type='stat', w=4, h=4),
  b.signal('app_availability_1d', 'Probed uptime (1 d)', type='stat', w=4, h=4),

  g.row('Errors'),
  b.signal('api_error_ratio', 'Error ratio ladder (5xx / all)', w=12,
           description='Every guide level of the error rate is a threshold line.'),
  g.timeseries('5xx answers by route and status',
               'Rate of 5xx answers per route and status code: which routes fail.',
               [g.target('sum by (route, status) (rate(http_requests_total{%s,status=~"5.."}[$__rate_interval]))' % sel,
                         '{{route}} {{status}}')], 'reqps', w=12),
  b.signal('api_server_errors', '5xx answers (5 min)', w=8),
  b.signal('api_exceptions', 'Unhandled exceptions (5 min)', w=8),
  g.timeseries('Failed requests by class',
               'Failed requests per second by class: 4xx, 5xx, exception (unhandled, answered 500) and timeout.',
               [g.target('sum by (class) (rate(http_request_errors_total{%s}[$__rate_interval]))' % sel, '{{class}}')],
               'reqps', w=8),
  b.signal('auth_failure_ratio', 'Sign-in failures (auth routes, 5xx share)', w=8),
  g.timeseries('Auth route requests by status',
               'Requests per second to the sign-in and sign-out routes (the mixin\'s authRoutes) by status: 5xx fail on our side, 401/403 are refused credentials.',
               [g.target('sum by (route, status) (rate(http_requests_total{%s,route=~"%s"}[$__rate_interval]))' % [sel, s.cfg.selectors.authRoutes],
                         '{{route}} {{status}}')], 'reqps', w=16),
  b.signal('api_error_ratio', 'Error ratio, last 24 h', w=24, h=6,
           description='The guide\'s monitoring-dashboard widget: error rate over 24 hours (dirt-free-crm § Monitoring Dashboards › Custom Monitoring Dashboard (widgets)).')
  + { timeFrom: '24h' },

  g.row('Latency'),
  b.signal('api_latency_p50', 'p50 latency', w=6),
  b.signal('api_latency_p95', 'p95 latency', w=6, targets=['tpt_erp_baseline_api_p95_response']),
  b.signal('api_latency_p99', 'p99 latency', w=6),
  b.signal('api_latency_mean', 'Mean latency', w=6, targets=['tpt_erp_baseline_api_avg_response']),
  b.signal('api_latency_p95', 'p95 latency by route', w=12, query=quantile(0.95), legend='{{route}}',
           targets=['tpt_erp_kpi_critical_transaction_time'],
           description='Per route (route pattern), so a single slow route stands out.'),
  g.timeseries('p50 / p95 / p99 by route',
               'Request duration quantiles per route pattern from the app histogram.',
               [g.target(quantile(0.5), 'p50 {{route}}'), g.target(quantile(0.95), 'p95 {{route}}'),
                g.target(quantile(0.99), 'p99 {{route}}')], 's', w=12)
  + g.withLegendTable(),
  b.signal('api_slow_requests', 'Requests slower than 5 s', w=8, unit='reqps'),
  b.signal('api_timeouts', 'Requests at the 30 s timeout', w=8, unit='reqps'),
  g.timeseries('Requests in flight', 'Requests being handled right now per app instance (saturation).',
               [g.target('sum by (instance) (http_requests_in_flight{%s})' % sel, '{{instance}}')], 'short', w=8),
  g.table('Slowest routes (report)',
          "Top 10 routes by mean duration over the dashboard's time range, with the requests over the 5 s bucket edge; means of 2 s and more are red (tpt-erp § Analytics & Reporting › Performance Analytics (identifyBottlenecks)).",
          [
            g.tableTarget('topk(10, sum by (route) (increase(http_request_duration_seconds_sum{%(s)s}[$__range])) / sum by (route) (increase(http_request_duration_seconds_count{%(s)s}[$__range])))' % { s: sel }, '{{route}}'),
            g.tableTarget('sum by (route) (increase(http_request_duration_seconds_count{%(s)s}[$__range])) - sum by (route) (increase(http_request_duration_seconds_bucket{%(s)s,le="5.0"}[$__range]))' % { s: sel }, '{{route}}'),
          ], 's', w=24, h=8,
          columns={ 'Value #A': 'mean duration', 'Value #B': 'requests over 5 s' },
          thresholds=g.thresholds([{ color: 'green', value: null }, { color: 'red', value: 2 }]))
  + g.withOverrides([
    { matcher: { id: 'byName', options: 'mean duration' },
      properties: [{ id: 'custom.cellOptions', value: { type: 'color-text' } }] },
    { matcher: { id: 'byName', options: 'requests over 5 s' },
      properties: [{ id: 'unit', value: 'short' }, { id: 'decimals', value: 0 }] },
  ]),

  g.row('Week-1 summary (7-day averages against the guide targets)'),
  b.targetStat('dirt_free_crm_week1_p50_latency', 'p50, 7-day average',
               'avg_over_time(%s[7d])' % b.query('api_latency_p50'), '{{job}}', w=8),
  b.targetStat('dirt_free_crm_week1_p95_latency', 'p95, 7-day average',
               'avg_over_time(%s[7d])' % b.query('api_latency_p95'), '{{job}}', w=8),
  b.targetStat('dirt_free_crm_week1_error_rate', 'Error ratio, 7-day average',
               'avg_over_time(%s[7d])' % b.query('api_error_ratio'), '{{job}}', w=8),

  g.row('Throughput'),
  b.signal('api_throughput', 'Requests per second vs same time last week', w=12, unit='reqps',
           query=requestRate(), legend='now {{job}}',
           extraTargets=[g.target(requestRate(' offset 1w'), 'last week {{job}}')])
  + g.withOverrides([g.dashedSeries('^last week.*', 'text', regex=true)]),
  b.signal('api_throughput_vs_baseline_drop', 'Traffic vs same time last week (ratio)', w=12,
           query='%s / %s' % [requestRate(), requestRate(' offset 1w')], also=['api_throughput_vs_baseline_surge'],
           description='Computed from the raw request counters (now / one week ago), so it also works on a history backfilled from raw series.'),

  g.row('Health endpoints'),
  g.stateTimeline('App health state', 'Overall state reported by the app health endpoint: 0 healthy, 1 degraded (answers 200), 2 unhealthy (answers 503).',
                  [g.target(b.query('app_health_state'), '{{instance}}')], w=12, h=6,
                  mappings=[g.valueMap({
                    '0': { text: 'healthy', color: 'green' },
                    '1': { text: 'degraded', color: 'yellow' },
                    '2': { text: 'unhealthy', color: 'red' },
                  })],
                  thresholds=s.c.thresholds('app_health_state'))
  + { description+: ' ' + s.c.description('app_health_state') }
  + g.withLinks([s.c.runbook('app_health_state')]),
  g.stateTimeline('Endpoint probes', 'Probe success per app endpoint (health, liveness, readiness): 1 up, 0 down.',
                  [g.target(b.query('app_probe_success'), '{{instance}}')], w=12, h=6,
                  mappings=[g.valueMap({ '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } })],
                  thresholds=s.c.thresholds('app_probe_success'))
  + { description+: ' ' + s.c.description('app_probe_success') }
  + g.withLinks([s.c.runbook('app_probe_success')]),
  b.signal('app_probe_duration', 'Probe duration', w=8),
  b.signal('app_health_check', 'Health checks not passing (by check)', w=8, type='timeseries'),
  g.timeseries('Health check latency (database check)',
               'Latency the app measured for its database check (SELECT 1), read from the health JSON (saas-ops-module § Health Check Endpoint › checkDatabase); no target stated.',
               [g.target('probe_component_latency_seconds{%s,component="database"}' % sel, '{{instance}}')], 's', w=8),
  b.signal('tls_cert_expiry', 'TLS certificate time left', w=12),
  g.stateTimeline('Probes over https', 'Whether each probe\'s final answer came over TLS (https): only those report a certificate expiry.',
                  [g.target('probe_http_ssl{%s}' % sel, '{{instance}}')], w=12, h=8,
                  mappings=[g.valueMap({ '0': { text: 'http', color: 'text' }, '1': { text: 'https', color: 'green' } })]),
])
