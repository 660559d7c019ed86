// Business intelligence: the BI content of estimate-library's four dashboards (executive,
// operations, UX, business intelligence; estimate-library § Monitoring Dashboards): what the
// estimate library changes for its users - creation time and accuracy with and without it,
// adoption, and whether users stay.
function(s)
local g = s.g;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-bi', 'Business intelligence', 'business', [jobs.business], tags=['bi'],
                  description='Estimate library impact: productivity, accuracy, adoption, retention (estimate-library § Monitoring Dashboards).');
local sel = b.sel();
local byLibrary(metric) = 'avg by (used_library) (%s{%s})' % [metric, sel];

b.dashboard([
  g.row('Impact of the estimate library (30 d)'),
  b.signal('business_estimate_time_reduction', 'Creation time saved', type='stat', w=6, h=5),
  b.signal('business_estimate_accuracy_improvement', 'Estimate error reduced', type='stat', w=6, h=5),
  b.signal('business_adoption', 'Users building with the library', type='stat', w=6, h=5),
  b.signal('business_task_completion', 'Task completion', type='stat', w=6, h=5),

  g.row('Estimates with and without the library (30 d)'),
  g.timeseries('Estimate creation time by library use',
               'Average creation time of the estimates of the last 30 days, split by whether they were built with the library (used_library true/false): the productivity gain the guide tracks (estimate-library § Business Impact Metrics › Cost Savings: time saved per estimate).',
               [g.target(byLibrary('business_estimate_creation_seconds'), 'library used: {{used_library}}')], 's', w=12),
  g.timeseries('Estimate accuracy by library use',
               'One minus the mean absolute percentage error of the estimates of the last 30 days whose actual amount is known, by library use (estimate-library § Business Impact Metrics › Accuracy Improvements: estimate accuracy percentage).',
               [g.target(byLibrary('business_estimate_accuracy_ratio'), 'library used: {{used_library}}')], 'percentunit', w=12),
  b.signal('business_estimate_time_reduction', 'Creation time saved by the library', w=12),
  b.signal('business_estimate_accuracy_improvement', 'Estimate error reduced by the library', w=12),

  g.row('Adoption and usage trends'),
  b.signal('business_adoption', 'Library adoption', w=8),
  b.signal('business_dau', 'Daily active users', w=8),
  b.signal('business_mau', 'Monthly active users', w=8),
  g.timeseries('Estimates created per day',
               'Estimates created in the last 24 hours: how much the estimate tools are used (estimate-library § Monitoring Dashboards › Business Intelligence). No guide states a level.',
               [g.target('business_estimates_created_per_day{%s}' % sel, '{{instance}}')], 'short', w=24),

  g.row('Retention and satisfaction'),
  b.signal('business_retention_d7', 'Day-7 retention', w=8),
  b.signal('business_retention_d30', 'Day-30 retention', w=8),
  b.signal('business_nps', 'NPS (average 0-10 answer, 30 d)', w=8),
])
