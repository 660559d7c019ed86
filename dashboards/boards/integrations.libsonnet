// Integrations: third-party status probes (and our own status page), payments, message
// deliveries and webhooks.
function(s)
local g = s.g;
local c = s.c;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-integrations', 'Integrations', 'integrations', [jobs.integrations, jobs.integrationProbe],
                  tags=['incident'],
                  description='Vendor status probes (Stripe, Twilio, Resend, Supabase, our status page), payments, deliveries and webhooks.');
local sel = b.sel();
local outageMap = [g.valueMap({
  '0': { text: 'operational', color: 'green' },
  '1': { text: 'degraded', color: 'yellow' },
  '2': { text: 'partial outage', color: 'orange' },
  '3': { text: 'major outage', color: 'red' },
})];

b.dashboard([
  g.row('Now'),
  g.stat('Probes failing', 'Vendor status probes that fail now. ' + c.description('integration_probe'),
         [g.target('count by (job) (%s == 0) or sum by (job) (%s) * 0' % [b.query('integration_probe'), b.query('integration_probe')], 'failing')],
         'short', w=5, h=4, graph=false)
  + g.withLinks([c.runbook('integration_probe')]),
  b.signal('payment_success_ratio', 'Payment success (1 h)', type='stat', w=5, h=4),
  b.signal('payment_failures', 'Failed payments (15 min)', type='stat', w=5, h=4),
  g.stat('Unresolved incidents (status pages)',
         'Unresolved incidents each probed status page lists, our own included (saas-ops-module § Status Page Integration › IncidentStatus; no threshold: people declare them).',
         [g.target('sum by (instance) (probe_incidents{%s})' % sel, '{{instance}}')], 'short', w=9, h=4,
         thresholds=g.thresholds([{ color: 'green', value: null }, { color: 'yellow', value: 1 }])),

  g.row('Status probes'),
  b.signal('integration_probe', 'Probe success by service', type='state-timeline', w=12, h=8,
           mappings=[g.valueMap({ '0': { text: 'failing', color: 'red' }, '1': { text: 'ok', color: 'green' } })]),
  b.signal('integration_outage', 'Reported status by service', type='state-timeline', w=12, h=8, mappings=outageMap,
           query='max by (job, instance) (%s) or max by (job, instance) (probe_status{%s,status="operational"}) * 0' % [b.query('integration_outage'), sel],
           description='0 while the service reports operational.'),
  g.table('Components not operational',
          "Components each status page lists with their current status (dirt-free-crm § Monitoring Dashboards › Custom Monitoring Dashboard (widgets): integration status; saas-ops-module § Status Page Integration: our own page's component states, shown not alerted since people set them during an incident).",
          [g.tableTarget('max by (instance, component, status) (probe_component_status{%s} == 1)' % sel, '{{instance}} {{component}}')],
          'none', w=12, h=8, hidden=['Value'])
  + g.withOverrides([{ matcher: { id: 'byName', options: 'status' },
                       properties: [{ id: 'custom.cellOptions', value: { type: 'color-text' } },
                                    { id: 'mappings', value: [g.valueMap({
                                      operational: { text: 'operational', color: 'green' },
                                      degraded_performance: { text: 'degraded performance', color: 'yellow' },
                                      degraded: { text: 'degraded', color: 'yellow' },
                                      partial_outage: { text: 'partial outage', color: 'orange' },
                                      major_outage: { text: 'major outage', color: 'red' },
                                    })] }] }]),
  g.timeseries('Probe duration', 'How long each status probe took.',
               [g.target('max by (instance) (probe_duration_seconds{%s})' % sel, '{{instance}}')], 's', w=8),
  g.timeseries('Probes by result', 'Probes per second the exporter ran, by target and result (success, failure).',
               [g.target('sum by (target, result) (rate(integration_probes_total{%s}[$__rate_interval]))' % sel, '{{target}} {{result}}')],
               'ops', w=8),
  g.table('Why a probe fails now', 'The last probe of each service and its failure reason (none when it succeeded).',
          [g.tableTarget('max by (instance, reason) (probe_failure_reason{%s} == 1)' % sel, '{{instance}}')],
          'none', w=8, h=8, hidden=['Value']),

  g.row('Incidents'),
  b.signal('status_page_silent', 'SEV1/SEV2 firing, no incident on our status page', type='state-timeline', w=12, h=8,
           mappings=[g.valueMap({ '0': { text: 'ok', color: 'green' }, '1': { text: 'no incident posted', color: 'orange' } })]),
  b.signal('incident_age', 'Firing alerts by age (resolution windows)', w=12, legend='{{alert}} {{guide}} {{severity}}'),

  g.row('Payments'),
  b.signal('payment_failures', 'Failed payments (15 min)', w=8),
  b.signal('payment_success_ratio', 'Payment success ratio (1 h)', w=8),
  g.bargauge('Payment failures by reason', "Failed payments by failure reason over the dashboard's range: a reason other than the customer's own (card declined, insufficient funds, expired card) points at our side or the provider.",
             [g.target('sort_desc(sum by (reason) (increase(integration_payment_failures_total{%s}[$__range])))' % sel, '{{reason}}')],
             'short', w=8),
  g.timeseries('Payments by status', 'Payments per second by status.',
               [g.target('sum by (status) (rate(integration_payments_total{%s}[$__rate_interval]))' % sel, '{{status}}')],
               'ops', w=24, h=6),

  g.row('Deliveries and webhooks'),
  b.signal('message_delivery_failures', 'Failed deliveries (15 min)', w=8),
  g.timeseries('Deliveries by channel, provider and status', 'Outbound messages per second (SMS via Twilio, email via Resend).',
               [g.target('sum by (channel, provider, status) (rate(integration_message_deliveries_total{%s}[$__rate_interval]))' % sel, '{{channel}} {{provider}} {{status}}')],
               'ops', w=16),
  b.signal('webhook_errors', 'Failed webhooks (15 min)', w=8),
  b.signal('webhooks_received', 'Webhook events received (1 h)', w=8),
  g.timeseries('Webhook events by provider and status', 'Incoming webhook events per second.',
               [g.target('sum by (provider, status) (rate(integration_webhook_events_total{%s}[$__rate_interval]))' % sel, '{{provider}} {{status}}')],
               'ops', w=8),
])
