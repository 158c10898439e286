#!/usr/bin/env bash
# Test bed only (tests/e2e/test_faults_deploy.py): turn an app's records into what labstack wrote before the state
# file: the serving release's files back in APP_ETC, its compose file naming APP_ETC/secrets.env,
# active-color and active-release instead of state.conf. Containers are left as they run.
# Usage: sudo legacy-layout.sh APP_ETC
set -euo pipefail
etc=$1
color=$(sed -n 's/^COLOR=//p' "$etc/state.conf")
release=$(sed -n 's/^RELEASE=//p' "$etc/state.conf")
mv "$etc/$color"/* "$etc/"
rmdir "$etc/$color"
sed -i "s|$etc/\${LABSTACK_COLOR}/secrets.env|$etc/secrets.env|" "$etc/app.compose.yaml"
grep -qF "$etc/secrets.env" "$etc/app.compose.yaml"
printf '%s\n' "$color" > "$etc/active-color"
printf '%s\n' "$release" > "$etc/active-release"
rm "$etc/state.conf"
