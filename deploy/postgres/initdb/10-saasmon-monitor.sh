#!/bin/bash
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
# Creates the exporter's login role from the DSN secret the exporter itself uses, with
# pg_monitor only (read pg_stat_* and settings, nothing else), and the pg_stat_statements
# extension whose view the statements collector reads.
set -eo pipefail
dsn=$(cat /run/secrets/saasmon_postgres_dsn)
userinfo=${dsn#*://}
userinfo=${userinfo%%@*}
monitor_user=${userinfo%%:*}
monitor_password=${userinfo#*:}
# psql variables (:"x" / :'x') quote the values, so no SQL is built by string pasting here.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v user="$monitor_user" -v password="$monitor_password" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'password';
GRANT pg_monitor TO :"user";
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
