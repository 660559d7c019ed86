// SLOs and error budgets: one row per availability objective of the catalog (slos.yaml):
// availability against the objective, the 30-day error budget left, and the burn rates of
// the multiwindow alerts (mixin slo.libsonnet) against their factors; then the storage probe.
// Reads the SLO recording rules slo:sli_error:ratio_rate<window>{slo="<name>"}.
function(s)
local g = s.g;
local jobs = s.cfg.jobs;
local slos = s.cfg.catalog.slos;
local windows = s.cfg.burnRateWindows;

local b = s.board('saasmon-slo', 'SLOs and error budgets', 'storage',
                  [jobs.app, jobs.postgres, jobs.storageProbe, s.cfg.cloudwatchJob], instance=false, tags=['slo'],
                  description='Availability objectives, error budgets and burn rates (slos.yaml).');
local sel = b.sel();

local num(x) = std.format('%.12g', x);
local percent(x) = s.c.threshold(x, 'ratio');
local errorRatio(name, window) = 'slo:sli_error:ratio_rate%s{slo="%s",%s}' % [window, name, sel];
// Error ratio over 30 days, weighted by events: the 5-minute error and event increases added
// up (both counted once per evaluation, so the ratio stands). A mean of the 5-minute ratios
// turned NaN on any idle window and weighted a quiet night like a busy day.
local errorRatio30d(name) =
  'sum_over_time(slo:sli_errors:increase5m{slo="%s",%s}[30d]) / sum_over_time(slo:sli_events:increase5m{slo="%s",%s}[30d])' % [name, sel, name, sel];

local sloRow(name) =
  local slo = slos[name];
  local budget = 1 - slo.objective;
  local sources = std.join('; ', slo.sources);
  local objective = 'Objective %s (%s).' % [percent(slo.objective), sources];
  local legend = std.join(' ', ['{{%s}}' % l for l in slo.labels]);
  local runbook = g.withLinks([g.link('Runbook: ' + slo.alert, s.cfg.runbookURLPattern % slo.alert)]);
  local meets = g.thresholds([{ color: 'red', value: null }, { color: 'green', value: slo.objective }]);
  [
    g.row('SLO %s: %s availability' % [name, percent(slo.objective)]),
    g.stat('Availability (30 d)',
           'Share of good %s events over the last 30 days (weighted by events), red below the objective. %s' % [name, objective],
           [g.target('1 - %s' % errorRatio30d(name), legend)], 'percentunit', w=6, h=6, thresholds=meets)
    + runbook,
    g.stat('Error budget left (30 d)',
           'Share of the 30-day error budget (%s of events may fail) not yet spent; red once it is used up. %s' % [percent(budget), objective],
           [g.target('1 - %s / %s' % [errorRatio30d(name), num(budget)], legend)], 'percentunit', w=6, h=6,
           thresholds=g.thresholds([{ color: 'red', value: null }, { color: 'green', value: 0 }]))
    + runbook,
    g.timeseries('Availability against the objective',
                 'Availability over the last hour and the last day; the dashed line is the objective. %s' % objective,
                 [g.target('1 - %s' % errorRatio(name, '1h'), '1 h ' + legend),
                  g.target('1 - %s' % errorRatio(name, '1d'), '1 d ' + legend)],
                 'percentunit', w=12, h=6, thresholds=meets)
    + runbook,
    g.timeseries('Burn rate',
                 'How many times faster than sustainable the error budget burns, per alert window (1 = the budget lasts exactly 30 days). The alert %s fires when a long window and its short window both exceed the factor: %s. %s' % [
                   slo.alert,
                   std.join(', ', ['%s > %gx (%s)' % [w.long, w.factor, w.severity] for w in windows]),
                   objective,
                 ],
                 [g.target('%s / %s' % [errorRatio(name, w.long), num(budget)], '%s %s' % [w.long, legend]) for w in windows],
                 'none', w=24, h=7,
                 thresholds=g.thresholds([{ color: 'green', value: null }] + [
                   { color: g.colors[w.severity], value: w.factor }
                   for w in std.sort(windows, function(w) w.factor)
                 ]))
    + runbook,
  ];

b.dashboard(
  std.flattenArrays([sloRow(name) for name in std.objectFields(slos)]) + [
    g.row('Storage probe'),
    b.signal('storage_availability', 'Storage availability (1 h)', w=8),
    g.stateTimeline('Storage probe result',
                    'Success of each blackbox probe of the object storage endpoint: 1 up, 0 down.',
                    [g.target('probe_success{%s}' % sel, '{{instance}}')], w=8, h=8,
                    mappings=[g.valueMap({ '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } })]),
    g.timeseries('Storage probe duration',
                 'Time the blackbox exporter needed for each storage probe (DNS, connect, TLS, request).',
                 [g.target('probe_duration_seconds{%s}' % sel, '{{instance}}')], 's', w=8),
    g.row('CDN (CloudFront, through cloudwatch_exporter)'),
    b.signal('cdn_hit_ratio', 'CDN cache hit ratio (30 min)', w=24, h=7),
  ]
)
