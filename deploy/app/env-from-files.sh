#!/bin/sh
# Entrypoint wrapper for the refapp programs in docker-compose.yml: they read credentials
# from the environment (REFAPP_DSN, REFAPP_FAULTS_TOKEN), compose hands them over as files.
# For every variable NAME_FILE=path, export NAME with the file's content, drop NAME_FILE,
# then exec the command. The values never appear on a command line or in compose's config.
#   env-from-files.sh python -m refapp --listen 0.0.0.0:8080
set -eu
for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
    # $name matched [A-Za-z_][A-Za-z0-9_]*: safe to expand inside eval.
    eval "file=\${${name}_FILE}"
    value=$(cat "$file")
    export "$name=$value"
    unset "${name}_FILE"
done
exec "$@"
