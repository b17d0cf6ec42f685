# Sourced by .ci/run: a throwaway PostgreSQL on 127.0.0.1 for the Optuna storage tests and the MLflow
# tracking-server tests. Installs the server from Debian's packages when missing, initialises a cluster in a
# temporary directory, starts it on a free loopback port, creates a password-protected user and two
# databases (hmil_bench for Optuna, hmil_mlflow for `mlflow server --backend-store-uri`), exports
# HMIL_BENCH_TEST_POSTGRES and HMIL_BENCH_TEST_MLFLOW_DB for the tests and stops/removes the cluster when the
# calling shell exits.
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin_dir)" ]; then
  echo "installing PostgreSQL (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PG_BIN="$(pg_bin_dir)"
PG_DIR="$(mktemp -d /tmp/hmil-bench-pg.XXXXXX)"
PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }  # initdb refuses root
[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
  --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -s \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c max_connections=200" start
stop_postgres() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -s stop || true; rm -rf "$PG_DIR"; }
trap stop_postgres EXIT
as_pg "$PG_BIN/psql" -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 \
  -c "CREATE USER hmil WITH PASSWORD 'hmil-ci'" -c "CREATE DATABASE hmil_bench OWNER hmil" \
  -c "CREATE DATABASE hmil_mlflow OWNER hmil" >/dev/null
export HMIL_BENCH_TEST_POSTGRES="postgresql+psycopg://hmil:hmil-ci@127.0.0.1:$PG_PORT/hmil_bench"
# +psycopg names psycopg 3 (the postgres extra): SQLAlchemy < 2.1 reads a bare postgresql:// as psycopg2.
export HMIL_BENCH_TEST_MLFLOW_DB="postgresql+psycopg://hmil:hmil-ci@127.0.0.1:$PG_PORT/hmil_mlflow"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT for the storage and MLflow server tests"
