# shellcheck shell=bash
# GENERATED from components/layout.py by `python -m components.layout > hooks/layout.sh`; do not edit.
# The server layout contract: paths, compose projects, networks, labels and state files.
# LABSTACK_ROOT prefixes every path and is empty on servers. Tests point it at a temp dir to run the hooks (and
# their functions) without root; sudo resets the environment (env_reset), so `sudo .../deploy-app.sh` always uses
# the real paths. It moves only the files the hooks read and write: paths inside compose files stay absolute.
# shellcheck disable=SC2034  # used by the scripts that source lib.sh

LABSTACK_ROOT=${LABSTACK_ROOT:-}
LABSTACK_HOOKS=$LABSTACK_ROOT/opt/labstack/hooks
LABSTACK_ETC=$LABSTACK_ROOT/etc/labstack
LABSTACK_SRV=$LABSTACK_ROOT/srv/labstack
APPS_ETC=$LABSTACK_ROOT/etc/labstack/apps
APPS_SRV=$LABSTACK_ROOT/srv/labstack/apps
PROXY_ETC=$LABSTACK_ROOT/etc/labstack/proxy
PROXY_SITES=$LABSTACK_ROOT/etc/labstack/proxy/sites
PROXY_SRV=$LABSTACK_ROOT/srv/labstack/proxy
PROXY_DATA=$LABSTACK_ROOT/srv/labstack/proxy/data
PROXY_CONFIG=$LABSTACK_ROOT/srv/labstack/proxy/config
PROXY_DOCKER_API=$LABSTACK_ROOT/srv/labstack/proxy/docker-api
PROXY_RAY_GATE=$LABSTACK_ROOT/srv/labstack/proxy/ray-gate
CADDY_LOCAL_ROOT_CA=$LABSTACK_ROOT/srv/labstack/proxy/data/caddy/pki/authorities/local/root.crt
EXPORT_SCRATCH=$LABSTACK_ROOT/srv/labstack/export-scratch
RAY_ETC=$LABSTACK_ROOT/etc/labstack/ray
RAY_TOKEN_FILE=$LABSTACK_ROOT/etc/labstack/ray/token
JOBS_SRV=$LABSTACK_ROOT/srv/labstack/jobs
JOBS_STORE=$LABSTACK_ROOT/srv/labstack/jobs/.files
WATCHER_ETC=$LABSTACK_ROOT/etc/labstack/watcher
WATCHER_STATE=$LABSTACK_ROOT/var/lib/labstack/watcher
WATCHER_RUN=$LABSTACK_ROOT/run/labstack-watcher
PROXY_ACCESS_LOG=$LABSTACK_ROOT/srv/labstack/proxy/data/access.log
CADDY_ETC=/etc/caddy
PROXY_NETWORK=labstack
PROXY_PROJECT=labstack-proxy
LABEL_APP=org.labstack.app
LABEL_COLOR=org.labstack.color
LABEL_ROLE=org.labstack.role
PROXY_CADDYFILE=Caddyfile
PROXY_COMPOSE=compose.yaml
APP_COMPOSE=app.compose.yaml
DATA_COMPOSE=data.compose.yaml
RELEASE_CONF=release.conf
SITE_TEMPLATE=site.caddy
INIT_CMD=init.cmd
POST_DEPLOY_CMD=post-deploy.cmd
EXPORT_CMD=export.cmd
SECRETS_ENV=secrets.env
DB_ENV=db.env
DB_PASSWORD=db-password
APP_STATE=state.conf
ACTIVE_COLOR=active-color
ACTIVE_RELEASE=active-release
RELEASES_LOG=releases.log
INIT_DONE=init-done
POST_DEPLOY_DONE=post-deploy-done
POST_DEPLOY_ANSWER=post-deploy-answer
RAY_GCS_PORT=6379
RAY_DASHBOARD_PORT=8265
RAY_CLIENT_PORT=10001
RAY_NODE_MANAGER_PORT=6380
RAY_OBJECT_MANAGER_PORT=6381
RAY_RUNTIME_ENV_AGENT_PORT=6382
RAY_DASHBOARD_AGENT_GRPC_PORT=6383
RAY_DASHBOARD_AGENT_LISTEN_PORT=52365
RAY_METRICS_EXPORT_PORT=6384
RAY_MIN_WORKER_PORT=11000
RAY_MAX_WORKER_PORT=11999
RAY_PROJECT=labstack-ray
RAY_GATE_DIR=/run/labstack-ray-gate
RAY_USER=1000:100
METADATA_GUARD_UNIT=labstack-metadata-guard
METADATA_SERVICE=169.254.169.254
POST_DEPLOY_MARK=labstack-post-deploy
POST_DEPLOY_LINES=20
LABEL_RAY_SETTINGS=org.labstack.ray-settings
SERVER_APP=_labstack
WATCHER_UNIT=labstack-auto-stop
COLORS=(blue green)

app_etc() { printf '%s\n' "$LABSTACK_ROOT/etc/labstack/apps/$1"; }  # app_etc APP
app_srv() { printf '%s\n' "$LABSTACK_ROOT/srv/labstack/apps/$1"; }  # app_srv APP
app_data() { printf '%s\n' "$LABSTACK_ROOT/srv/labstack/apps/$1/data"; }  # app_data APP
app_postgres() { printf '%s\n' "$LABSTACK_ROOT/srv/labstack/apps/$1/postgres"; }  # app_postgres APP
app_redis() { printf '%s\n' "$LABSTACK_ROOT/srv/labstack/apps/$1/redis"; }  # app_redis APP
app_volumes() { printf '%s\n' "$LABSTACK_ROOT/srv/labstack/apps/$1/volumes"; }  # app_volumes APP
app_kept_db_env() { printf '%s\n' "$LABSTACK_ROOT/srv/labstack/apps/$1/db.env"; }  # app_kept_db_env APP
app_site() { printf '%s\n' "$LABSTACK_ROOT/etc/labstack/proxy/sites/$1.caddy"; }  # app_site APP
release_etc() { printf '%s\n' "$LABSTACK_ROOT/etc/labstack/apps/$1/$2"; }  # release_etc APP COLOR
app_network() { printf '%s\n' "labstack-$1"; }  # app_network APP
data_project() { printf '%s\n' "$1-data"; }  # data_project APP
init_project() { printf '%s\n' "$1-init"; }  # init_project APP
release_project() { printf '%s\n' "$1-$2"; }  # release_project APP COLOR
web_alias() { printf '%s\n' "$1-$2-web"; }  # web_alias APP COLOR
