# shellcheck shell=bash
# GENERATED from components/layout.py by `python -m components.layout > hooks/layout.sh`; do not edit.
# The server layout contract: paths, compose projects, networks, labels and state files.
# shellcheck disable=SC2034  # used by the scripts that source lib.sh

LABSTACK_HOOKS=/opt/labstack/hooks
LABSTACK_ETC=/etc/labstack
LABSTACK_SRV=/srv/labstack
APPS_ETC=/etc/labstack/apps
APPS_SRV=/srv/labstack/apps
PROXY_ETC=/etc/labstack/proxy
PROXY_SITES=/etc/labstack/proxy/sites
PROXY_SRV=/srv/labstack/proxy
CADDY_LOCAL_ROOT_CA=/srv/labstack/proxy/data/caddy/pki/authorities/local/root.crt
PROXY_NETWORK=labstack
PROXY_PROJECT=labstack-proxy
LABEL_APP=org.labstack.app
LABEL_COLOR=org.labstack.color
LABEL_ROLE=org.labstack.role
COLORS=(blue green)
APP_COMPOSE=app.compose.yaml
DATA_COMPOSE=data.compose.yaml
RELEASE_CONF=release.conf
SITE_TEMPLATE=site.caddy
INIT_CMD=init.cmd
POST_DEPLOY_CMD=post-deploy.cmd
SECRETS_ENV=secrets.env
DB_ENV=db.env
ACTIVE_COLOR=active-color
ACTIVE_RELEASE=active-release
RELEASES_LOG=releases.log
INIT_DONE=init-done
POST_DEPLOY_DONE=post-deploy-done

app_etc() { printf '%s\n' "/etc/labstack/apps/$1"; }  # app_etc APP
app_srv() { printf '%s\n' "/srv/labstack/apps/$1"; }  # app_srv APP
app_site() { printf '%s\n' "/etc/labstack/proxy/sites/$1.caddy"; }  # app_site APP
app_network() { printf '%s\n' "labstack-$1"; }  # app_network APP
data_project() { printf '%s\n' "$1-data"; }  # data_project APP
init_project() { printf '%s\n' "$1-init"; }  # init_project APP
release_project() { printf '%s\n' "$1-$2"; }  # release_project APP COLOR
web_alias() { printf '%s\n' "$1-$2-web"; }  # web_alias APP COLOR
