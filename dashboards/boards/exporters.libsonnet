// Exporter self-monitoring: is every scrape target up, do the saasmon collectors succeed and
// how fresh is their data, and does the alerting pipeline work (Prometheus rules,
// Alertmanager notifications, the SMS relay's Twilio link). A blind spot here silences
// every other board's alerts.
function(s)
local g = s.g;
local c = s.c;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-exporters', 'Exporter self-monitoring', 'exporter',
                  [jobs[k] for k in std.objectFields(jobs)],
                  description='Scrape targets, saasmon collectors and the alert delivery pipeline.');
local sel = b.sel();
local collector(metric) = '{__name__=~".+_exporter_collector_%s",%s}' % [metric, sel];
local upDown = g.valueMap({ '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } });

// A state-timeline of a 0/1 catalog signal: its levels, description and runbook.
local stateOf(name, title, description, legend) =
  g.stateTimeline(title, description + ' ' + c.description(name), [g.target(b.query(name), legend)],
                  w=24, h=8, mappings=[upDown], thresholds=c.thresholds(name))
  + g.withLinks([c.runbook(name)]);

b.dashboard([
  g.row('Scrape targets'),
  b.signal('target_down', 'Share of targets up by job', type='bargauge', w=8, h=10,
           query='avg by (job) (up{%s})' % sel, legend='{{job}}', unit='percentunit'),
  g.timeseries('Scrape duration by job',
               'How long Prometheus needed to scrape each job (slowest instance); a duration near the scrape timeout loses samples.',
               [g.target('max by (job) (scrape_duration_seconds{%s})' % sel, '{{job}}')], 's', w=8, h=10),
  g.timeseries('Samples scraped by job',
               'Samples per scrape of each job; a sudden drop means series went missing.',
               [g.target('sum by (job) (scrape_samples_scraped{%s})' % sel, '{{job}}')], 'short', w=8, h=10),
  stateOf('target_down', 'Target up', 'Whether Prometheus scraped each target (1 up, 0 down).',
          '{{job}} {{instance}}') + { gridPos+: { h: 10 } },

  g.row('saasmon collectors'),
  stateOf('collector_failing', 'Collector last run succeeded',
          'Whether the last run of each collector of the saasmon exporters succeeded (1) or failed (0).',
          '{{job}} {{collector}} {{target}}'),
  b.signal('collector_stale', 'Data age (since the last successful collection)', w=8,
           legend='{{job}} {{collector}} {{target}}'),
  g.timeseries('Collector run duration',
               "Duration of each collector's last run; runs near their timeout fail next as timeouts.",
               [g.target('max by (job, collector, target) (%s)' % collector('duration_seconds'),
                         '{{job}} {{collector}} {{target}}')], 's', w=8),
  g.timeseries('Collector errors by reason',
               'Failed collector runs per second by reason (timeout, connection, auth, query ...), per exporter job.',
               [g.target('sum by (job, reason) (rate(%s[$__rate_interval]))' % collector('errors_total'),
                         '{{job}} {{reason}}')], 'ops', w=8),

  g.row('Alerting pipeline'),
  b.signal('prometheus_rule_failures', 'Prometheus rule evaluation failures', w=8),
  b.signal('alertmanager_notifications_failed', 'Alertmanager notifications failed', w=8),
  g.timeseries('Alertmanager notifications sent',
               'Notifications Alertmanager attempted per second by integration (slack, pagerduty, email, webhook).',
               [g.target('sum by (integration) (rate(alertmanager_notifications_total{%s}[$__rate_interval]))' % sel,
                         '{{integration}}')], 'ops', w=8),
  b.signal('sms_relay_twilio', 'SMS relay: Twilio reachable', type='stat', w=6, h=6)
  + g.withMappings([upDown]),
  g.bargauge('SMS messages by result',
             'SMS messages the relay finished in the time range, by final result after retries (sent, rejected = Twilio 4xx, failed = 5xx/429/connection, timeout).',
             [g.target('sum by (result) (increase(smsrelay_messages_total{%s}[$__range]))' % sel, '{{result}}')],
             'short', w=6, h=6),
  g.timeseries('Alerts in Alertmanager',
               'Alerts Alertmanager holds by state (active, suppressed = silenced or inhibited, unprocessed).',
               [g.target('sum by (state) (alertmanager_alerts{%s})' % sel, '{{state}}')], 'short', w=6, h=6),
  g.stat('Configuration loaded',
         'Whether Prometheus and Alertmanager loaded their last configuration (1) or kept the previous one after an error (0).',
         [g.target('prometheus_config_last_reload_successful{%s}' % sel, '{{job}}'),
          g.target('alertmanager_config_last_reload_successful{%s}' % sel, '{{job}}')],
         'none', w=6, h=6)
  + g.withMappings([g.valueMap({ '0': { text: 'failed', color: 'red' }, '1': { text: 'loaded', color: 'green' } })]),
])
