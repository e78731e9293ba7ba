# Helpers for scripts/test: make sure a Postgres answers for the test suite.
# shellcheck shell=bash

PG_PORT_OWN=55432
PG_DIR="$(pwd)/target/pg"

ensure_rust_components() {
  if command -v rustup >/dev/null 2>&1; then
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  fi
}

pg_answers() { # url
  if command -v psql >/dev/null 2>&1; then
    psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

install_postgres_packages() {
  echo "== no Postgres server binaries found; installing Debian's postgresql package"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql postgresql-client >/dev/null
}

start_own_postgres() {
  local bin
  bin="$(pg_bin_dir)"
  if [ -z "$bin" ]; then
    install_postgres_packages
    bin="$(pg_bin_dir)"
  fi
  [ -n "$bin" ] || { echo "could not find or install Postgres" >&2; exit 1; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir "$PG_DIR" postgres
  fi
  rm -rf "$PG_DIR" && mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown -R postgres "$PG_DIR"
  echo "== starting a throwaway Postgres on 127.0.0.1:${PG_PORT_OWN} (data in target/pg)"
  as_pg_user "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >/dev/null
  as_pg_user "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p ${PG_PORT_OWN} -k ${PG_DIR} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
  trap 'as_pg_user "'"$bin"'/pg_ctl" -D "'"$PG_DIR"'/data" -m fast stop >/dev/null 2>&1 || true' EXIT
  export FIREBREAK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:${PG_PORT_OWN}/postgres"
}

ensure_postgres() {
  if [ -n "${FIREBREAK_TEST_POSTGRES_URL:-}" ]; then
    return
  fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if [ -z "${FIREBREAK_TEST_OWN_POSTGRES:-}" ] && pg_answers "$local_url"; then
    export FIREBREAK_TEST_POSTGRES_URL="$local_url"
  else
    start_own_postgres
  fi
}

# Each test creates its own database; remove the ones earlier runs left behind.
drop_stale_test_databases() {
  command -v psql >/dev/null 2>&1 || return 0
  local db
  for db in $(psql "$FIREBREAK_TEST_POSTGRES_URL" -Atqc \
      "SELECT datname FROM pg_database WHERE datname LIKE 'firebreak\_test\_%' OR datname LIKE 'firebreak\_bench\_%'" 2>/dev/null); do
    psql "$FIREBREAK_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
  done
}
