"""The SQL the PostgreSQL exporter sends, version-gated where catalogs changed.

Everything is read-only and works for a role with pg_monitor. Row limits are applied in
SQL so a database with 10,000 tables costs the same scrape as one with 20.
"""

# pg_stat_activity read once per round (materialized: each mention of the view would build
# the whole list of backends again), marked by `kind`: `state` rows (client connections by
# database and state, our own pool left out: it is not the app's load), `longer_than` rows
# (active statements older than each threshold of $1, seconds) and one row per summary
# value (`n`). Every value is float8 so the three kinds share one column.
ACTIVITY = """
WITH a AS MATERIALIZED (
  SELECT pid, datname, state, backend_type, application_name, xact_start, state_change,
         query_start, wait_event_type
  FROM pg_stat_activity
), summary AS (
  SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS clients,
         max(extract(epoch FROM now() - xact_start)) FILTER (
           WHERE backend_type = 'client backend' AND xact_start IS NOT NULL
             AND pid <> pg_backend_pid()) AS oldest_xact,
         max(extract(epoch FROM now() - state_change)) FILTER (
           WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()) AS oldest_idle,
         -- pg_blocking_pids is costly: only ask it about sessions waiting on a lock. CASE,
         -- not AND: SQL does not fix the order in which AND evaluates its arguments.
         count(*) FILTER (WHERE CASE WHEN wait_event_type = 'Lock'
                                     THEN cardinality(pg_blocking_pids(pid)) > 0 END)
           AS blocked
  FROM a
)
SELECT 'state' AS kind, coalesce(datname, '') AS datname, coalesce(state, 'unknown') AS state,
       NULL::float8 AS threshold, count(*)::float8 AS n
FROM a WHERE backend_type = 'client backend'
  AND application_name <> 'saasmon_exporter'  -- our own pool is not the app's load
GROUP BY 2, 3
UNION ALL
SELECT 'longer_than', NULL, NULL, t, count(a.pid)
FROM unnest($1::float8[]) AS t
LEFT JOIN a
  ON a.state = 'active' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
 AND extract(epoch FROM now() - a.query_start) > t
GROUP BY t
UNION ALL
SELECT v.kind, NULL, NULL, NULL, v.n
FROM summary, LATERAL (VALUES
  ('max_connections', current_setting('max_connections')::float8),
  ('reserved', current_setting('superuser_reserved_connections')::float8),
  ('clients', clients::float8),
  ('oldest_xact_seconds', greatest(0, coalesce(oldest_xact, 0))::float8),
  ('oldest_idle_in_xact_seconds', greatest(0, coalesce(oldest_idle, 0))::float8),
  ('waiting_locks', (SELECT count(*) FROM pg_locks WHERE NOT granted)::float8),
  ('blocked_sessions', blocked::float8)) AS v(kind, n)
"""

DATABASES = """
SELECT d.datname, s.xact_commit, s.xact_rollback, s.deadlocks, s.blks_hit, s.blks_read,
       s.temp_bytes, pg_database_size(d.oid) AS size_bytes, age(d.datfrozenxid) AS xid_age
FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn AND NOT d.datistemplate
ORDER BY size_bytes DESC
"""

HAS_STATEMENTS = "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"

# pg_stat_statements read once per round (one call of its function, materialized): the
# top rows, the totals and the slow buckets come out of the same read, marked by `kind`.
# One row per (database, queryid) in the top: pg_stat_statements also splits by role and
# top level, which would give duplicate label sets. Utility statements are not normalized
# (a `CREATE ROLE .. PASSWORD 'x'` keeps its literal): collectors.mask_statement masks
# every literal before the text is cut to a bounded fingerprint label.
# $1: top_n, $2: the slow thresholds (seconds).
STATEMENTS = """
WITH s AS MATERIALIZED (
  SELECT dbid, queryid, query, calls, total_exec_time, mean_exec_time, rows
  FROM pg_stat_statements
), top AS (
  SELECT coalesce(d.datname, '') AS datname, s.queryid::text AS queryid,
         min(s.query) AS query_text, sum(s.calls) AS calls,
         sum(s.total_exec_time) / 1000.0 AS total_seconds,
         sum(s.total_exec_time) / nullif(sum(s.calls), 0) / 1000.0 AS mean_seconds,
         sum(s.rows) AS rows
  FROM s LEFT JOIN pg_database d ON d.oid = s.dbid
  WHERE s.queryid IS NOT NULL
  GROUP BY d.datname, s.queryid
  ORDER BY total_seconds DESC LIMIT $1
)
SELECT 'top' AS kind, datname, queryid, query_text, calls, total_seconds, mean_seconds, rows,
       NULL::float8 AS threshold
FROM top
UNION ALL
SELECT 'all', NULL, NULL, NULL, coalesce(sum(calls), 0),
       coalesce(sum(total_exec_time), 0) / 1000.0, NULL, count(*), NULL
FROM s
UNION ALL
SELECT 'slow', NULL, NULL, NULL, coalesce(sum(s.calls), 0), NULL, NULL, count(s.queryid), t
FROM unnest($2::float8[]) AS t LEFT JOIN s ON s.mean_exec_time / 1000.0 > t
GROUP BY t
"""

# `total` counts every user table: the window runs before the LIMIT.
TABLES_TOP = """
SELECT schemaname, relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan,
       n_live_tup, n_dead_tup, count(*) OVER () AS total
FROM pg_stat_user_tables ORDER BY seq_tup_read DESC, relname LIMIT $1
"""

UNUSED_INDEXES = """
SELECT count(*) AS n, coalesce(sum(pg_relation_size(i.indexrelid)), 0) AS size_bytes
FROM pg_stat_user_indexes i JOIN pg_index x ON x.indexrelid = i.indexrelid
WHERE i.idx_scan = 0 AND NOT x.indisunique AND NOT x.indisprimary
"""

# One statement on a primary and on a standby alike, rows marked by `kind`: one `server`
# row (pg_is_in_recovery(), read once in `r`, and this standby's replay lag), a `standby`
# row per connected standby (on a primary only) and a `slot` row per replication slot.
# pg_current_wal_lsn() raises an error during recovery: every use is behind CASE on `r`.
# On a standby, no replay for a while on an idle primary is not lag, so the lag is 0 when
# everything received has been replayed.
REPLICATION = """
WITH r AS MATERIALIZED (SELECT pg_is_in_recovery() AS replica)
SELECT 'server' AS kind, NULL::text AS name, r.replica::int AS replica,
       CASE WHEN r.replica THEN
         coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)
       END::float8 AS bytes,
       CASE WHEN r.replica THEN
         CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
              ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
         END
       END::float8 AS seconds,
       NULL::int AS active
FROM r
UNION ALL
SELECT 'standby', coalesce(nullif(s.application_name, ''), 'standby')
                    || '@' || coalesce(host(s.client_addr), 'local'),
       NULL,
       coalesce(pg_wal_lsn_diff(CASE WHEN r.replica THEN NULL ELSE pg_current_wal_lsn() END,
                                s.replay_lsn), 0),
       coalesce(extract(epoch FROM s.replay_lag), 0), NULL
FROM r, pg_stat_replication s WHERE NOT r.replica
UNION ALL
SELECT 'slot', slot_name, NULL,
       coalesce(pg_wal_lsn_diff(
         CASE WHEN r.replica THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
         restart_lsn), 0),
       NULL, active::int
FROM r, pg_replication_slots
"""

# pg_stat_checkpointer replaced the checkpoint columns of pg_stat_bgwriter in 17.
CHECKPOINTS_17 = """
SELECT num_timed AS timed, num_requested AS requested, write_time / 1000.0 AS write_seconds,
       sync_time / 1000.0 AS sync_seconds, buffers_written FROM pg_stat_checkpointer
"""
CHECKPOINTS_13 = """
SELECT checkpoints_timed AS timed, checkpoints_req AS requested,
       checkpoint_write_time / 1000.0 AS write_seconds,
       checkpoint_sync_time / 1000.0 AS sync_seconds, buffers_checkpoint AS buffers_written
FROM pg_stat_bgwriter
"""
