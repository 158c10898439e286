#!/usr/bin/env bash
# A test bed fault (tests/e2e/test_faults_deploy.py), never on a server: moves APP's traffic COUNT times between
# its two colours with switch_site, the step every deploy and rollback switches with (Caddy's graceful reload
# included). The other colour is a copy of the serving release, its web started beside it (and healthy first), so
# both answer. Prints the time of each switch; ends on the colour it started from.
# Usage: sudo flip-switch.sh APP COUNT     (COUNT even)
set -euo pipefail
# shellcheck source=hooks/app-state.bash
source /opt/labstack/hooks/app-state.bash
app=$1 count=$2
state_read "$app"
serving=$STATE_COLOR other=${COLORS[0]}
[ "$other" != "$serving" ] || other=${COLORS[1]}
etc=$(app_etc "$app")
cp -a "$etc/$serving" "$etc/$other"
compose_release "$app" "$other" up -d web >/dev/null 2>&1
web=$(compose_release "$app" "$other" ps -q web)
address=$(docker inspect -f "{{with index .NetworkSettings.Networks \"$(app_network "$app")\"}}{{.IPAddress}}{{end}}" "$web")
url="http://$address:$(conf_value "$etc/$other/$RELEASE_CONF" PORT)$(conf_value "$etc/$other/$RELEASE_CONF" HEALTH_PATH)"
for _ in $(seq 1 600); do
  ! curl -sf -o /dev/null --max-time 5 "$url" || break
  sleep 0.2
done
colors=("$other" "$serving")
for i in $(seq 1 "$count"); do
  color=${colors[$(((i - 1) % 2))]}
  switch_site "$app" "$color" "$STATE_RELEASE" "$STATE_IMAGE" "$STATE_WORKERS"
  printf '%s switch %s -> %s\n' "$(date -u +%T.%N)" "$i" "$color"
done
