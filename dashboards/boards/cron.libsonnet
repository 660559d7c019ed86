// Cron jobs: per job last success, next expected run, and missed / failed / slow states.
function(s)
local g = s.g;
local c = s.c;

local b = s.board('saasmon-cron', 'Cron jobs', 'cron', [s.cfg.jobs.cron],
                  description='Every registered cron job: last success, next expected run, missed, failed and slow runs.');
local sel = b.sel();
local flag = [g.valueMap({ '0': { text: 'ok', color: 'green' }, '1': { text: 'yes', color: 'red' } })];
// Jobs a guide gives their own staleness limit (catalog rules with a cron_job matcher).
local staleJobs = std.set([r.match.cron_job for r in c.rules('cron_since_success') if std.objectHas(r.match, 'cron_job')]);

b.dashboard([
  g.row('Now'),
  g.stat('Jobs failing now', 'Registered jobs whose last finished run failed. ' + c.description('cron_failed'),
         [g.target('sum by (job) (cron_job_failed{%s})' % sel, '{{job}}')], 'short', w=6, h=4,
         thresholds=g.thresholds([{ color: 'green', value: null }, { color: 'orange', value: 1 }]), graph=false)
  + g.withLinks([c.runbook('cron_failed')]),
  g.stat('Jobs missed now', 'Jobs whose scheduled time plus grace passed with no run started. ' + c.description('cron_missed'),
         [g.target('sum by (job) (cron_job_missed{%s})' % sel, '{{job}}')], 'short', w=6, h=4,
         thresholds=g.thresholds([{ color: 'green', value: null }, { color: 'orange', value: 1 }]), graph=false)
  + g.withLinks([c.runbook('cron_missed')]),
  g.stat('Jobs running too long', 'Jobs whose running or last run exceeds their maximum runtime. ' + c.description('cron_slow'),
         [g.target('sum by (job) (cron_job_slow{%s})' % sel, '{{job}}')], 'short', w=6, h=4, graph=false)
  + g.withLinks([c.runbook('cron_slow')]),
  b.signal('cron_registry_incomplete', 'Jobs missing from the registry', type='stat', w=6, h=4),

  g.row('Per job'),
  g.table('Cron jobs',
          "Every registered job: schedule, last success, time since, next expected run, last run's duration against the maximum runtime, failures in a row (dirt-free-crm § Monitoring Dashboards › Custom Monitoring Dashboard (widgets): cron last execution).",
          [
            g.tableTarget('max by (cron_job, schedule, timezone, severity) (cron_job_info{%s})' % sel, '{{cron_job}}'),
            g.tableTarget('max by (cron_job) (cron_job_last_success_timestamp_seconds{%s}) * 1000' % sel, '{{cron_job}}'),
            g.tableTarget('max by (cron_job) (%s)' % b.query('cron_since_success'), '{{cron_job}}'),
            g.tableTarget('max by (cron_job) (cron_job_next_expected_run_timestamp_seconds{%s}) * 1000' % sel, '{{cron_job}}'),
            g.tableTarget('max by (cron_job) (cron_job_last_duration_seconds{%s})' % sel, '{{cron_job}}'),
            g.tableTarget('max by (cron_job) (cron_job_max_runtime_seconds{%s})' % sel, '{{cron_job}}'),
            g.tableTarget('max by (cron_job) (cron_job_consecutive_failures{%s})' % sel, '{{cron_job}}'),
          ], 's', w=24, h=12,
          columns={
            'Value #B': 'last success', 'Value #C': 'since success', 'Value #D': 'next expected',
            'Value #E': 'last duration', 'Value #F': 'max runtime', 'Value #G': 'failures in a row',
          },
          hidden=['Value #A'])
  + g.withOverrides([
    { matcher: { id: 'byName', options: f }, properties: [{ id: 'unit', value: 'dateTimeFromNow' }] }
    for f in ['last success', 'next expected']
  ] + [
    { matcher: { id: 'byName', options: 'failures in a row' },
      properties: [{ id: 'unit', value: 'short' }, { id: 'custom.cellOptions', value: { type: 'color-background' } },
                   { id: 'thresholds', value: g.thresholds([{ color: 'green', value: null }, { color: 'red', value: 1 }]) }] },
  ]),
  b.signal('cron_failed', 'Failed (last finished run)', type='state-timeline', w=24, h=9, mappings=flag),
  b.signal('cron_missed', 'Missed (no run since the scheduled time + grace)', type='state-timeline', w=24, h=9, mappings=flag),
  b.signal('cron_slow', 'Slow (over the maximum runtime)', type='state-timeline', w=24, h=9, mappings=flag),

  g.row('Time since last success (jobs with a guide limit)'),
] + [
  b.signal('cron_since_success', job, type='stat', w=6, h=4, match={ cron_job: job }, legend='{{cron_job}}')
  for job in staleJobs
] + [
  b.signal('cron_since_success', 'Time since last success, all jobs', w=24, h=9,
           description='The threshold lines are the per-job limits of the jobs above.'),

  g.row('Runs'),
  g.timeseries('Finished runs by status', 'Runs that ended per second, by job and status.',
               [g.target('sum by (cron_job, status) (rate(cron_job_runs_total{%s}[$__rate_interval]))' % sel, '{{cron_job}} {{status}}')],
               'ops', w=12),
  g.timeseries('Last run duration against maximum runtime', 'Duration of each job\'s most recently finished run; dashed: its configured maximum runtime.',
               [g.target('max by (cron_job) (cron_job_last_duration_seconds{%s})' % sel, '{{cron_job}}'),
                g.target('max by (cron_job) (cron_job_max_runtime_seconds{%s})' % sel, 'max {{cron_job}}')],
               's', w=12)
  + g.withOverrides([g.dashedSeries('^max .*', 'red', regex=true)]),
  g.timeseries('Heartbeats rejected', 'Heartbeat requests refused per second, by reason.',
               [g.target('sum by (reason) (rate(cron_heartbeat_rejected_total{%s}[$__rate_interval]))' % sel, '{{reason}}')],
               'ops', w=12),
  g.timeseries('Jobs registered vs expected', 'Jobs in the exporter registry against the number the guide lists.',
               [g.target('max by (job) (cron_jobs_registered{%s})' % sel, 'registered'),
                g.target('max by (job) (cron_jobs_expected{%s})' % sel, 'expected')],
               'short', w=12),
])
