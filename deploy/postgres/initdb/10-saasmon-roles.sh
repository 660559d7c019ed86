#!/bin/bash
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
# Creates, from the very DSN secrets the clients log in with (so they cannot disagree):
# - the app's login role and its database (the role owns it, so its migrations may create
#   tables), with pg_stat_statements, whose view the exporter's statements collector reads;
# - the exporters' login role with pg_monitor (pg_stat_* and settings) and SELECT on every
#   table the app creates in that database (the cron, integrations and business exporters
#   read cron_job_logs, payments, ...), through default privileges: nothing else.
# SAASMON_SECRETS_DIR is only for running this script outside the container (tests).
set -eo pipefail
secrets=${SAASMON_SECRETS_DIR:-/run/secrets}

# userinfo and database of a postgresql://user:password@host:port/database DSN
dsn_part() {
    local dsn rest
    dsn=$(cat "$secrets/$1")
    rest=${dsn#*://}
    case $2 in
        user) rest=${rest%%@*}; echo "${rest%%:*}" ;;
        password) rest=${rest%%@*}; echo "${rest#*:}" ;;
        database) rest=${rest#*/}; echo "${rest%%\?*}" ;;
    esac
}

app_user=$(dsn_part postgres_app_dsn user)
app_password=$(dsn_part postgres_app_dsn password)
app_db=$(dsn_part postgres_app_dsn database)
monitor_user=$(dsn_part saasmon_postgres_dsn user)
monitor_password=$(dsn_part saasmon_postgres_dsn password)

# psql variables (:"x" / :'x') quote the values, so no SQL is built by string pasting here.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" \
  -v app_user="$app_user" -v app_password="$app_password" -v app_db="$app_db" \
  -v monitor_user="$monitor_user" -v monitor_password="$monitor_password" <<'SQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
CREATE ROLE :"monitor_user" LOGIN PASSWORD :'monitor_password';
GRANT pg_monitor TO :"monitor_user";
CREATE DATABASE :"app_db" OWNER :"app_user";
\connect :"app_db"
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
ALTER DEFAULT PRIVILEGES FOR ROLE :"app_user" IN SCHEMA public
  GRANT SELECT ON TABLES TO :"monitor_user";
SQL
