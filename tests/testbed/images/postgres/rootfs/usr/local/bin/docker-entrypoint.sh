#!/usr/bin/env bash
# Stand-in for the official postgres image's entrypoint (Debian's PostgreSQL 15 underneath).
# Contract kept: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (and *_FILE variants), POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD; initdb into $PGDATA on first start only; /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz
# run once against a server listening on the unix socket only; then postgres listens on all addresses with
# password (scram-sha-256) auth for TCP clients.
set -Eeuo pipefail

file_env() {
	# VAR or VAR_FILE (docker secrets), never both
	local var="$1" def="${2:-}" fvar="${1}_FILE" val
	if [ "${!var:-}" ] && [ "${!fvar:-}" ]; then
		echo >&2 "error: both $var and $fvar are set (but are exclusive)"
		exit 1
	fi
	val="$def"
	if [ "${!var:-}" ]; then val="${!var}"; elif [ "${!fvar:-}" ]; then val="$(< "${!fvar}")"; fi
	export "$var"="$val"
	unset "$fvar"
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA" || :
	chmod 3777 /var/run/postgresql
	exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
		cat >&2 <<-'EOM'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
		EOM
		exit 1
	fi
	# the password goes through a file descriptor, never the command line
	# shellcheck disable=SC2086
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		-D "$PGDATA" $POSTGRES_INITDB_ARGS
	auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
	printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

	# temporary server on the unix socket only, as upstream, for the init scripts
	PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD" \
		pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	export PGPASSWORD="$POSTGRES_PASSWORD"
	psql_cmd=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		"${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
	fi
	psql_cmd+=(--dbname "$POSTGRES_DB")
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then echo "$0: running $f"; "$f"
				else echo "$0: sourcing $f"; # shellcheck disable=SC1090
					. "$f"; fi ;;
			*.sql) echo "$0: running $f"; "${psql_cmd[@]}" -f "$f" ;;
			*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql_cmd[@]}" ;;
			*) echo "$0: ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo
	echo 'PostgreSQL init process complete; ready for start up.'
	echo
fi

exec "$@"
