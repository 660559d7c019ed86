#!/bin/sh
# Create every secret file docker-compose.yml mounts, for the stand-in stack:
#   deploy/secrets/create.sh [DIR]        (default: deploy/secrets/local, git-ignored)
# Passwords and tokens are random; webhook URLs point at the stand-in receivers (replace
# those files with your real Slack webhook URLs etc. to notify for real); the SMTP stand-in
# gets a self-signed certificate for the host name `receivers`.
# Files that exist are kept: PostgreSQL and Grafana store the first password they were given
# in their volumes, so re-running must never change one.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/local}
receivers=http://receivers:9700

mkdir -p "$dir"
# Only the owner may enter the directory. The files themselves stay world-readable because
# compose bind-mounts them with their host mode and the containers run as different uids
# (postgres 999, saasmon 10001, grafana 472, nobody).
chmod 700 "$dir"

put() {  # put NAME VALUE: write VALUE (no trailing newline) unless NAME exists
    if [ ! -e "$dir/$1" ]; then
        printf '%s' "$2" > "$dir/$1"
        chmod 644 "$dir/$1"
        echo "created $dir/$1"
    fi
}

random() {  # 128 bits as hex: URL-safe, so it can sit in a DSN unencoded
    openssl rand -hex 16
}

put postgres_password "$(random)"
put postgres_app_dsn "postgresql://app:$(random)@postgres:5432/crm"
put saasmon_postgres_dsn "postgresql://saasmon:$(random)@postgres:5432/crm"
put refapp_faults_token "$(random)"
put grafana_admin_password "$(random)"
put slack_critical_alerts_url "$receivers/slack/critical-alerts"
put slack_alerts_url "$receivers/slack/alerts"
put slack_monitoring_url "$receivers/slack/monitoring"
put slack_user_feedback_url "$receivers/slack/user-feedback"
put slack_production_alerts_url "$receivers/slack/production-alerts"
put pagerduty_routing_key "$(random)"
put pagerduty_escalation_routing_key "$(random)"
put smtp_password "$(random)"
put smsrelay_token "$(random)"
put twilio_auth_token "$(random)"
put heartbeat_url "$receivers/heartbeat"

if [ ! -e "$dir/receivers_tls_cert" ] || [ ! -e "$dir/receivers_tls_key" ]; then
    # Alertmanager requires TLS to the smarthost (smtp_require_tls) and trusts this very
    # certificate through SSL_CERT_FILE; Go checks the subjectAltName, not the CN.
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=receivers" \
        -addext "subjectAltName=DNS:receivers" \
        -keyout "$dir/receivers_tls_key" -out "$dir/receivers_tls_cert" 2>/dev/null
    chmod 644 "$dir/receivers_tls_cert" "$dir/receivers_tls_key"
    echo "created $dir/receivers_tls_cert and $dir/receivers_tls_key"
fi
