"""The SQL the PostgreSQL exporter sends, version-gated where catalogs changed.

Everything is read-only and works for a role with pg_monitor. Row limits are applied in
SQL so a database with 10,000 tables costs the same scrape as one with 20.
"""

ACTIVITY_BY_STATE = """
SELECT coalesce(datname, '') AS datname, coalesce(state, 'unknown') AS state, count(*) AS n
FROM pg_stat_activity WHERE backend_type = 'client backend'
  AND application_name <> 'saasmon_exporter'  -- our own pool is not the app's load
GROUP BY 1, 2
"""

ACTIVITY_SUMMARY = """
SELECT
  current_setting('max_connections')::int AS max_connections,
  current_setting('superuser_reserved_connections')::int AS reserved,
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS clients,
  greatest(0, coalesce((SELECT max(extract(epoch FROM now() - xact_start)) FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND xact_start IS NOT NULL
              AND pid <> pg_backend_pid()), 0)) AS oldest_xact_seconds,
  greatest(0, coalesce((SELECT max(extract(epoch FROM now() - state_change))
            FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'
              AND pid <> pg_backend_pid()), 0)) AS oldest_idle_in_xact_seconds,
  (SELECT count(*) FROM pg_locks WHERE NOT granted) AS waiting_locks,
  -- pg_blocking_pids is costly: only ask it about sessions waiting on a lock.
  (SELECT count(*) FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) > 0)
    AS blocked_sessions
"""

# Active statements running longer than each threshold (seconds, one array parameter).
LONG_RUNNING = """
SELECT t AS threshold, count(a.pid) AS n
FROM unnest($1::float8[]) AS t
LEFT JOIN pg_stat_activity a
  ON a.state = 'active' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
 AND extract(epoch FROM now() - a.query_start) > t
GROUP BY t
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

IN_RECOVERY = "SELECT pg_is_in_recovery()"

# On a replica: no replay for a while on an idle primary is not lag, so report 0 when
# everything received has been replayed.
REPLICA_LAG = """
SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
       END AS lag_seconds,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)
         AS lag_bytes
"""

STANDBYS = """
SELECT coalesce(nullif(application_name, ''), 'standby')
         || '@' || coalesce(host(client_addr), 'local') AS name,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) AS lag_bytes,
       coalesce(extract(epoch FROM replay_lag), 0) AS lag_seconds
FROM pg_stat_replication ORDER BY lag_bytes DESC
"""

SLOTS = """
SELECT slot_name, active::int AS active,
       coalesce(pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
              ELSE pg_current_wal_lsn() END, restart_lsn), 0) AS retained_bytes
FROM pg_replication_slots ORDER BY retained_bytes DESC
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
