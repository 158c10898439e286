#!/bin/sh
# Stand-in for the official redis:7 entrypoint: same argument handling, runs as the redis user,
# and (as upstream) turns protected mode off when no config file is given, so other containers can connect.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi
if [ "$1" = 'redis-server' ]; then
	conf=
	case "${2:-}" in *.conf) conf=1 ;; esac
	if [ -z "$conf" ]; then
		set -- "$@" --protected-mode no
	fi
fi
exec "$@"
