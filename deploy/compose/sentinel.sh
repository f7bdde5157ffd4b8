#!/bin/sh
# A Redis Sentinel for SafeGrid's master `safegrid` (deploy/compose/compose.yml).
# Sentinel rewrites its configuration as the topology changes, so the file is written
# only the first time, into the container's volume; afterwards Sentinel's own copy rules.
# Quorum 2 of 3: any two sentinels agreeing the master is down start a failover.
set -eu
conf="${SENTINEL_CONF:-/data/sentinel.conf}"
if [ ! -f "$conf" ]; then
  cat > "$conf" <<CONF
port ${SENTINEL_PORT:-26379}
dir $(dirname "$conf")
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${SENTINEL_ANNOUNCE}
requirepass ${REDIS_PASSWORD}
sentinel sentinel-pass ${REDIS_PASSWORD}
sentinel monitor safegrid ${REDIS_MASTER_HOST:-redis} ${REDIS_MASTER_PORT:-6379} 2
sentinel auth-pass safegrid ${REDIS_PASSWORD}
sentinel down-after-milliseconds safegrid 5000
sentinel failover-timeout safegrid 60000
sentinel parallel-syncs safegrid 1
CONF
fi
exec redis-server "$conf" --sentinel
