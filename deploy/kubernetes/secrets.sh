#!/bin/sh
# The Secrets the Kubernetes base reads, from a directory of secret files (the layout of
# deploy/secrets/README.md, e.g. made by deploy/secrets/create.sh and then given your real
# webhook URLs, routing keys and tokens). Prints manifests; nothing is sent anywhere:
#   deploy/kubernetes/secrets.sh DIR NAMESPACE | kubectl apply -f -
# Values never pass through a command line or this repository: kubectl reads the files.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SECRETS_DIR NAMESPACE" >&2; exit 2; }
dir=$1
namespace=$2

secret() {  # secret NAME KEY...: a Secret NAME with one key per file of the same name
    name=$1
    shift
    for key in "$@"; do
        [ -f "$dir/$key" ] || { echo "$0: $dir/$key: no such file" >&2; exit 2; }
    done
    # Each KEY becomes --from-file=DIR/KEY (rotated through "$@": no word splitting).
    for key in "$@"; do
        set -- "$@" "--from-file=$dir/$key"
        shift
    done
    echo "---"
    kubectl create secret generic "$name" --namespace "$namespace" "$@" \
        --dry-run=client --output yaml
}

# The exporters' database role (postgres, cron, integrations, business: dsn_file).
secret saasmon-exporters saasmon_postgres_dsn
# The SMS relay: Twilio, the bearer token Alertmanager sends it, the heartbeat URL.
secret saasmon-sms-relay twilio_auth_token smsrelay_token heartbeat_url
# Alertmanager's receivers (the Alertmanager resource's spec.secrets): every *_file of
# base/generated/alertmanager/alertmanager.yaml.
secret saasmon-alertmanager-receivers slack_critical_alerts_url slack_alerts_url \
    slack_monitoring_url slack_user_feedback_url slack_production_alerts_url \
    pagerduty_routing_key pagerduty_escalation_routing_key smtp_password smsrelay_token
