// Realtime: the app's websocket latency, reconnections and message delay.
function(s)
local g = s.g;

local b = s.board('saasmon-realtime', 'Realtime', 'realtime', [s.cfg.jobs.app],
                  description='Websocket round trip, reconnections, message delay and connections of the app.');
local sel = b.sel();
local quantile(q, metric) =
  'histogram_quantile(%g, sum by (job, le) (rate(%s_bucket{%s}[$__rate_interval])))' % [q, metric, sel];

b.dashboard([
  g.row('Now'),
  b.signal('realtime_socket_latency', 'Socket latency p95', type='stat', w=6, h=4),
  b.signal('realtime_message_delay', 'Message delay p95', type='stat', w=6, h=4),
  b.signal('realtime_reconnections', 'Reconnections in the last hour', type='stat', w=6, h=4),
  g.stat('Open connections', 'Open realtime websocket connections (all app instances).',
         [g.target('sum by (job) (realtime_connections{%s})' % sel, '{{job}}')], 'short', w=6, h=4),

  g.row('Latency and delay'),
  b.signal('realtime_socket_latency', 'Socket round trip (p95)', w=12,
           extraTargets=[g.target(quantile(0.5, 'realtime_socket_latency_seconds'), 'p50 {{job}}'),
                         g.target(quantile(0.99, 'realtime_socket_latency_seconds'), 'p99 {{job}}')],
           legend='p95 {{job}}', description='p50 and p99 drawn for context.'),
  b.signal('realtime_message_delay', 'Message delay (p95)', w=12,
           extraTargets=[g.target(quantile(0.5, 'realtime_message_delay_seconds'), 'p50 {{job}}'),
                         g.target(quantile(0.99, 'realtime_message_delay_seconds'), 'p99 {{job}}')],
           legend='p95 {{job}}', description='p50 and p99 drawn for context.'),

  g.row('Connections'),
  b.signal('realtime_reconnections', 'Reconnections', w=8,
           description="Reconnections over the last hour, the window of nova-crm's 5 per hour, as the alert counts them."),
  g.timeseries('Open connections by instance', 'Open websocket connections per app instance.',
               [g.target('sum by (instance) (realtime_connections{%s})' % sel, '{{instance}}')], 'short', w=8),
  g.timeseries('Messages by direction', 'Realtime messages per second, sent and received.',
               [g.target('sum by (direction) (rate(realtime_messages_total{%s}[$__rate_interval]))' % sel, '{{direction}}')],
               'ops', w=8),
])
