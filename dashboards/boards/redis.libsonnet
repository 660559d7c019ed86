// Redis: reachability, memory against maxmemory, hit ratio, evictions, clients, keys and
// the estimate library's warmed cache items.
function(s)
local g = s.g;

local b = s.board('saasmon-redis', 'Redis', 'redis', [s.cfg.jobs.redis],
                  description='Redis exporter: memory, cache efficiency, evictions, clients and keys.');
local sel = b.sel();
local byTarget(expr) = 'sum by (target) (%s)' % expr;

b.dashboard([
  g.row('Now'),
  g.stat('Redis reachable', 'Whether the exporter reaches Redis (1 up, 0 down). ' + s.c.description('redis_up'),
         [g.target(b.query('redis_up'), '{{target}}')], 'none', w=4, h=4, thresholds=s.c.thresholds('redis_up'))
  + g.withMappings([g.valueMap({ '0': { text: 'DOWN', color: 'red' }, '1': { text: 'UP', color: 'green' } })])
  + g.withLinks([s.c.runbook('redis_up')]),
  b.signal('redis_memory', 'Memory / maxmemory', type='stat', w=5, h=4),
  b.signal('redis_hit_ratio', 'Hit ratio', type='stat', w=5, h=4),
  b.signal('redis_evictions', 'Evictions per second', type='stat', w=5, h=4),
  g.stat('Connected clients', 'Client connections.', [g.target(byTarget('redis_connected_clients{%s}' % sel), '{{target}}')],
         'short', w=5, h=4),

  g.row('Memory'),
  b.signal('redis_memory', 'Memory used / maxmemory', w=12),
  g.timeseries('Memory', 'Memory allocated by Redis, resident memory of the process and the maxmemory setting (0 = no limit).',
               [g.target(byTarget('redis_memory_used_bytes{%s}' % sel), 'used {{target}}'),
                g.target(byTarget('redis_memory_rss_bytes{%s}' % sel), 'rss {{target}}'),
                g.target(byTarget('redis_memory_max_bytes{%s}' % sel), 'maxmemory {{target}}')],
               'bytes', w=12)
  + g.withOverrides([g.dashedSeries('^maxmemory .*', 'red', regex=true)]),

  g.row('Cache efficiency'),
  b.signal('redis_hit_ratio', 'Keyspace hit ratio', w=8,
           description='Also the estimate library\'s cache hit rate (estimate-library § Implementation Components › Performance Optimization Scripts (cache-optimization.ts); no threshold stated).'),
  g.timeseries('Hits and misses', 'Key lookups per second that found (hits) or missed (misses) their key.',
               [g.target(byTarget('rate(redis_keyspace_hits_total{%s}[$__rate_interval])' % sel), 'hits {{target}}'),
                g.target(byTarget('rate(redis_keyspace_misses_total{%s}[$__rate_interval])' % sel), 'misses {{target}}')],
               'ops', w=8),
  b.signal('redis_evictions', 'Evicted keys', w=8,
           extraTargets=[g.target(byTarget('rate(redis_expired_keys_total{%s}[$__rate_interval])' % sel), 'expired {{target}}')],
           legend='evicted {{target}}', description='Expired keys (TTL) drawn for comparison.'),
  b.signal('redis_cache_warm_items', 'Warmed library items in cache', w=12),
  g.timeseries('Keys per database', 'Keys and keys with a TTL per Redis database.',
               [g.target('sum by (target, db) (redis_db_keys{%s})' % sel, 'keys {{target}} {{db}}'),
                g.target('sum by (target, db) (redis_db_keys_expiring{%s})' % sel, 'expiring {{target}} {{db}}')],
               'short', w=12),

  g.row('Clients and commands'),
  g.timeseries('Clients', 'Connected clients, clients in a blocking call, and connections rejected by maxclients per second.',
               [g.target(byTarget('redis_connected_clients{%s}' % sel), 'connected {{target}}'),
                g.target(byTarget('redis_blocked_clients{%s}' % sel), 'blocked {{target}}'),
                g.target(byTarget('rate(redis_rejected_connections_total{%s}[$__rate_interval])' % sel), 'rejected/s {{target}}')],
               'short', w=8),
  g.timeseries('Commands per second (top 10)', 'Calls per second of the most called commands.',
               [g.target('topk(10, sum by (cmd) (rate(redis_command_calls_total{%s}[$__rate_interval])))' % sel, '{{cmd}}')],
               'ops', w=8),
  g.timeseries('PING latency and slow log', 'Round trip of the exporter\'s PING; the slow log length on the right axis.',
               [g.target(byTarget('redis_ping_latency_seconds{%s}' % sel), 'ping {{target}}'),
                g.target(byTarget('redis_slowlog_length{%s}' % sel), 'slowlog {{target}}')],
               's', w=8)
  + g.withOverrides([{ matcher: { id: 'byRegexp', options: '^slowlog .*' },
                       properties: [{ id: 'unit', value: 'short' }, { id: 'custom.axisPlacement', value: 'right' }] }]),
])
