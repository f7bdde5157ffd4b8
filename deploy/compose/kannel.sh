#!/bin/sh
# Start Kannel's bearerbox or smsbox (deploy/compose/compose.yml) from the template:
# envsubst fills the ${...} values from the environment; Kannel's own %-escapes stay.
set -eu
box="$1"
case "$box" in
  bearerbox|smsbox) ;;
  *) echo "kannel.sh: bearerbox or smsbox, not $box" >&2; exit 2 ;;
esac
conf=/run/kannel-$box.conf
umask 077
envsubst < /etc/safegrid/kannel.conf.template > "$conf"
# The project's own check (sms/kannel_config.py) runs on this template in the tests;
# here Kannel reads it. Logs go to stderr (the container log).
exec "/usr/sbin/$box" -v 1 "$conf"
