// Database (PostgreSQL) and its host: availability, connections, statement times, locks,
// replication, storage, and the host's CPU, memory, disk and network (node_exporter).
function(s)
local g = s.g;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-database', 'Database (PostgreSQL)', 'database',
                  [jobs.postgres, jobs.node, jobs.app, jobs.business],
                  tags=['host'],
                  description='PostgreSQL exporter and node_exporter of the database host; the app\'s own statement counts and the business exporter\'s query probes.');
local sel = b.sel();

b.dashboard([
  g.row('Now'),
  g.stat('PostgreSQL reachable', 'Whether the exporter reaches the database (1 up, 0 down). ' + s.c.description('pg_up'),
         [g.target(b.query('pg_up'), '{{target}}')], 'none', w=4, h=4, thresholds=s.c.thresholds('pg_up'))
  + g.withMappings([g.valueMap({ '0': { text: 'DOWN', color: 'red' }, '1': { text: 'UP', color: 'green' } })])
  + g.withLinks([s.c.runbook('pg_up')]),
  b.signal('pg_connections_share', 'Connections used / max', type='stat', w=4, h=4),
  b.signal('pg_query_mean', 'Mean statement time', type='stat', w=4, h=4),
  b.signal('pg_slowest_statement', 'Slowest statement (mean)', type='stat', w=4, h=4),
  b.signal('pg_deadlocks', 'Deadlocks (5 min)', type='stat', w=4, h=4),
  b.signal('pg_database_size', 'Storage used', type='stat', w=4, h=4),

  g.row('Connections'),
  b.signal('pg_connections', 'Open connections', w=8),
  b.signal('pg_connections_share', 'Share of max_connections in use', w=8),
  g.timeseries('Connections used / max',
               "Open connections against the server's max_connections ceiling (dirt-free-crm § First 24 Hours › Database Health: connections XX/100; the exporter reads the ceiling from the server).",
               [g.target('sum by (job, instance) (pg_connections{%s})' % sel, 'used {{instance}}'),
                g.target('max by (job, instance) (pg_settings_max_connections{%s})' % sel, 'max {{instance}}')],
               'short', w=8)
  + g.withOverrides([g.dashedSeries('^max .*', 'red', regex=true)]),
  b.signal('pg_connections_left', 'Connections left to the app', w=4),
  g.timeseries('Connections by database and state',
               'Open connections per database and state (active, idle, idle in transaction ...) (estimate-library § Key Metrics to Track: database performance; no threshold stated).',
               [g.target('sum by (database, state) (pg_connections{%s})' % sel, '{{database}} {{state}}')],
               'short', w=8, stack=true),
  g.timeseries('Blocked sessions and waiting locks',
               'Sessions blocked by another session\'s lock and lock requests not granted.',
               [g.target('sum by (instance) (pg_blocked_sessions{%s})' % sel, 'blocked sessions {{instance}}'),
                g.target('sum by (instance) (pg_locks_waiting{%s})' % sel, 'waiting locks {{instance}}')],
               'short', w=12),

  g.row('Statements'),
  b.signal('pg_query_mean', 'Mean statement time', w=8, targets=['tpt_erp_baseline_db_query_avg']),
  b.signal('pg_slowest_statement', 'Slowest statement mean time', w=8),
  g.timeseries('Statements over the slow-query cutoffs',
               'Tracked statements whose mean execution time exceeds each cutoff (the exporter default 0.1, 1, 5 and 30 s; estimate-library § Implementation Components › Performance Optimization Scripts (optimize-database.ts) states no cutoff).',
               [g.target('max by (threshold_seconds) (pg_stat_statements_slow{%s})' % sel, 'over {{threshold_seconds}} s')],
               'short', w=8),
  g.table('Slowest statements (report)',
          "Top 10 tracked statements by mean execution time, with calls and execution time over the dashboard's range; a mean of 1 s and more is red (tpt-erp § Analytics & Reporting › Performance Analytics (identifyBottlenecks)).",
          [
            g.tableTarget('topk(10, max by (database, queryid, query) (pg_stat_statements_mean_exec_seconds{%s}))' % sel, '{{query}}'),
            g.tableTarget('sum by (database, queryid, query) (increase(pg_stat_statements_calls_total{%s}[$__range]))' % sel, '{{query}}'),
            g.tableTarget('sum by (database, queryid, query) (increase(pg_stat_statements_exec_seconds_total{%s}[$__range]))' % sel, '{{query}}'),
          ], 's', w=24, h=9,
          columns={ 'Value #A': 'mean', 'Value #B': 'calls', 'Value #C': 'total time' },
          thresholds=g.thresholds([{ color: 'green', value: null }, { color: 'red', value: 1 }]))
  + g.withOverrides([
    { matcher: { id: 'byName', options: 'mean' }, properties: [{ id: 'custom.cellOptions', value: { type: 'color-text' } }] },
    { matcher: { id: 'byName', options: 'calls' }, properties: [{ id: 'unit', value: 'short' }, { id: 'decimals', value: 0 }] },
    { matcher: { id: 'byName', options: 'query' }, properties: [{ id: 'custom.width', value: 600 }] },
  ]),
  b.signal('db_statement_error_ratio', 'Failed statements (app, 1 h)', w=8),
  g.timeseries('Rolled-back transactions',
               'Share of transactions rolled back. Not an error rate: ORMs and pools roll back routinely (a read-only request, a released connection), so it has no alert; failed statements are counted by the app (panel beside).',
               [g.target('sum by (instance) (rate(pg_database_xact_rollback_total{%(s)s}[$__rate_interval])) / (sum by (instance) (rate(pg_database_xact_commit_total{%(s)s}[$__rate_interval])) + sum by (instance) (rate(pg_database_xact_rollback_total{%(s)s}[$__rate_interval])))' % { s: sel }, '{{instance}}')],
               'percentunit', w=8),
  b.signal('pg_deadlocks', 'Deadlocks (5 min)', w=8),
  g.timeseries('Buffer cache hit ratio',
               'Share of block reads served from shared buffers, per database (low values mean disk reads).',
               [g.target('sum by (database) (rate(pg_database_blocks_hit_total{%(s)s}[$__rate_interval])) / (sum by (database) (rate(pg_database_blocks_hit_total{%(s)s}[$__rate_interval])) + sum by (database) (rate(pg_database_blocks_read_total{%(s)s}[$__rate_interval])))' % { s: sel }, '{{database}}')],
               'percentunit', w=8)
  + g.withMinMax(0, 1),
  b.signal('pg_seq_scan_rows', 'Rows read per sequential scan (max table)', w=8),
  b.signal('pg_unused_indexes', 'Unused indexes', w=8),
  g.timeseries('Transactions', 'Commits and rollbacks per second.',
               [g.target('sum by (instance) (rate(pg_database_xact_commit_total{%s}[$__rate_interval]))' % sel, 'commit {{instance}}'),
                g.target('sum by (instance) (rate(pg_database_xact_rollback_total{%s}[$__rate_interval]))' % sel, 'rollback {{instance}}')],
               'ops', w=8),

  g.row('The guides\' own checks (business exporter)'),
  b.signal('db_critical_query_time', 'Critical test queries (fastest run of 5 min)', w=12, legend='{{query}}'),
  b.signal('audit_log_age', 'Oldest audit log row', w=12, unit='s'),

  g.row('Replication and storage'),
  b.signal('pg_replication_lag', 'Replication lag (standby replay delay)', w=8),
  g.timeseries('Standby lag seen from the primary',
               'Replay lag each connected standby reports to the primary, in bytes of WAL not yet replayed.',
               [g.target('max by (standby) (pg_replication_standby_lag_bytes{%s})' % sel, '{{standby}}')],
               'bytes', w=8),
  b.signal('pg_database_size', 'Database size / allocated storage', w=8),
  g.timeseries('Database size', 'Size of each database.',
               [g.target('sum by (database) (pg_database_size_bytes{%s})' % sel, '{{database}}')], 'bytes', w=8),
  b.signal('pg_storage_limit_unset', 'Exporters without a storage size', w=4, type='stat'),
  g.timeseries('Dead tuples (top 10 tables)', 'Dead rows vacuum can reclaim, largest tables.',
               [g.target('topk(10, sum by (schema, table) (pg_table_dead_tuples{%s}))' % sel, '{{schema}}.{{table}}')],
               'short', w=12),

  g.row('Database host (node_exporter)'),
  b.signal('host_cpu', 'CPU busy', w=6),
  b.signal('host_memory', 'Memory used', w=6),
  b.signal('host_disk_iops', 'Disk I/O operations', w=6, unit='iops'),
  b.signal('host_network', 'Network use of link speed', w=6),
  b.signal('host_oom_kills', 'Processes OOM-killed (5 min)', w=6),
  // Virtual NICs (containers, most clouds) report no link speed, so the share above stays
  // empty there; the raw throughput always has data.
  g.timeseries('Network throughput', 'Bytes received and sent per second on every interface but loopback (the measure behind the link-speed share, which needs a NIC that reports its speed).',
               [g.target('sum by (instance) (rate(node_network_receive_bytes_total{%s,device!="lo"}[$__rate_interval]))' % sel, 'received {{instance}}'),
                g.target('sum by (instance) (rate(node_network_transmit_bytes_total{%s,device!="lo"}[$__rate_interval]))' % sel, 'sent {{instance}}')],
               'Bps', w=18),
])
