#!/bin/bash
# Entrypoint of localhost/symptomdx/mariadb: MariaDB standing in for the mysql:8.4 image of KFP's
# third-party/mysql manifest, with that image's contract:
#   - args as in the manifest; a first arg "mysqld"/"mariadbd" is dropped, the rest go to
#     mariadbd except MySQL-8-only options, which are dropped with a log line
#     (--authentication-policy, --mysql-native-password, --default-authentication-plugin,
#     --disable-log-bin/--skip-log-bin; MariaDB has no binary log unless --log-bin is given, and
#     its default plugin is mysql_native_password), and --ignore-db-dir, which becomes MariaDB's
#     --ignore-db-dirs;
#   - first start on an empty datadir (no mysql/ in it): mariadb-install-db, then root@'%' and
#     root@localhost with an empty password when MYSQL_ALLOW_EMPTY_PASSWORD is set (to anything
#     but empty/0/false/no), or with MYSQL_ROOT_PASSWORD; MYSQL_DATABASE, if set, is created;
#   - then mariadbd in the foreground as PID 1: SIGTERM shuts it down cleanly.
# Listens on 0.0.0.0:3306 unless --bind-address/--port say otherwise.
set -euo pipefail

log() { echo "mariadb-entrypoint: $*" >&2; }
truthy() { case "${1,,}" in "" | 0 | false | no) return 1 ;; *) return 0 ;; esac; }

if [ $# -gt 0 ] && { [ "$1" = mysqld ] || [ "$1" = mariadbd ]; }; then shift; fi

datadir=/var/lib/mysql
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --datadir | -h)
      [ $# -ge 2 ] || { log "$1 needs a value"; exit 2; }
      datadir=$2; args+=("--datadir=$2"); shift 2; continue ;;
    --datadir=*) datadir=${1#*=}; args+=("$1") ;;
    --authentication-policy | --default-authentication-plugin | --default_authentication_plugin)
      log "ignoring MySQL-only option $1 $2"; shift 2; continue ;;
    --authentication-policy=* | --authentication_policy=* | --mysql-native-password* | \
      --mysql_native_password* | --default-authentication-plugin=* | \
      --default_authentication_plugin=* | --disable-log-bin | --skip-log-bin)
      log "ignoring MySQL-only option $1" ;;
    --ignore-db-dir=*) args+=("--ignore-db-dirs=${1#*=}") ;;
    --ignore-db-dir)
      [ $# -ge 2 ] || { log "$1 needs a value"; exit 2; }
      args+=("--ignore-db-dirs=$2"); shift 2; continue ;;
    *) args+=("$1") ;;
  esac
  shift
done

run_as=()
if [ "$(id -u)" = 0 ]; then
  # As root (docker run without --user): the server and its files belong to mysql.
  mkdir -p "$datadir" /run/mysqld
  chown mysql:mysql "$datadir" /run/mysqld
  run_as=(--user=mysql)
fi

if [ ! -d "$datadir/mysql" ]; then
  if truthy "${MYSQL_ALLOW_EMPTY_PASSWORD:-}"; then
    root_password=
  elif [ -n "${MYSQL_ROOT_PASSWORD:-}" ]; then
    root_password=$MYSQL_ROOT_PASSWORD
  else
    log "database is uninitialized and password option is not specified"
    log "  You need to specify one of MYSQL_ROOT_PASSWORD or MYSQL_ALLOW_EMPTY_PASSWORD"
    exit 1
  fi
  if [ -z "${run_as[*]}" ] && ! { [ -d "$datadir" ] && [ -w "$datadir" ] && [ -x "$datadir" ]; }; then
    log "$datadir is not a directory writable by uid $(id -u) gid $(id -g) ($(stat -c 'owner %u:%g, mode %a' "$datadir" 2>/dev/null || echo missing))"
    log "  give it to 999:999 (fsGroup does not apply to hostPath volumes) or make it group-writable"
    exit 1
  fi
  log "initializing $datadir"
  mariadb-install-db "${run_as[@]}" --datadir="$datadir" --skip-test-db \
    --auth-root-authentication-method=normal --skip-name-resolve >/dev/null
  sock=$(mktemp -u /tmp/mariadb-init.XXXXXX.sock)
  init_log=$(mktemp /tmp/mariadb-init.XXXXXX.log)
  mariadbd "${run_as[@]}" --datadir="$datadir" --skip-networking --socket="$sock" \
    2>"$init_log" &
  init_pid=$!
  trap 'kill -TERM "$init_pid" 2>/dev/null; wait "$init_pid"; exit 143' TERM INT
  for _ in $(seq 1 120); do
    mariadb-admin --socket="$sock" -uroot ping >/dev/null 2>&1 && break
    kill -0 "$init_pid" 2>/dev/null || {
      log "the initializing server exited:"; cat "$init_log" >&2; exit 1
    }
    sleep 0.5
  done
  esc=${root_password//\\/\\\\}; esc=${esc//\'/\\\'}
  {
    # The upstream image's users: root from anywhere and root@localhost, nothing else.
    echo "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');"
    echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
    echo "FLUSH PRIVILEGES;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$esc';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$esc';"
    echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "GRANT PROXY ON ''@'%' TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MYSQL_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE//\`/\`\`}\`;"
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$sock" -uroot --batch
  mariadb-admin --socket="$sock" -uroot ${root_password:+--password="$root_password"} shutdown
  wait "$init_pid" || true
  trap - TERM INT
  rm -f "$init_log"
  log "initialized $datadir (root@'%' with $([ -z "$root_password" ] && echo an empty || echo the given) password)"
fi

exec mariadbd "${run_as[@]}" "${args[@]}"
