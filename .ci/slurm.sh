# Sourced by .ci/run: a throwaway single-node Slurm cluster for the submitit tests (tests/cluster/).
# Installs Slurm, munge and MariaDB from Debian's packages when missing, then starts, all under one temporary
# directory and on free loopback ports (nothing in /etc is touched): munged, a MariaDB for slurmdbd (sacct
# needs the accounting database: submitit reads job states with `sacct`, and without it a cancelled or killed
# job stays UNKNOWN forever), slurmdbd, slurmctld and slurmd (one node with this machine's CPUs, partition
# `debug`). Exports SLURM_CONF, HMIL_BENCH_TEST_SLURM=1 and HMIL_BENCH_SLURM_PARTITION=debug, and stops the
# daemons and removes the directory when the calling shell exits (composed with any EXIT trap already set,
# e.g. .ci/postgres.sh's). Sourcing it again while that cluster still answers does nothing.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
if [ -n "${HMIL_BENCH_SLURM_DIR:-}" ] && [ -d "$HMIL_BENCH_SLURM_DIR" ] && timeout 10 sinfo -h >/dev/null 2>&1; then
  echo "Slurm cluster already running ($HMIL_BENCH_SLURM_DIR)"
  return 0
fi
slurm_missing() {
  local c
  for c in munged slurmctld slurmd slurmdbd sbatch sacct sacctmgr mariadbd mariadb-install-db mariadb; do
    command -v "$c" >/dev/null 2>&1 || return 0
  done
  return 1
}
if slurm_missing; then
  echo "installing Slurm, munge and MariaDB (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  slurm_apt_log="$(mktemp /tmp/hmil-bench-slurm-apt.XXXXXX)"
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client \
    slurmdbd munge mariadb-server-core mariadb-client-core; } >"$slurm_apt_log" 2>&1 \
    || { cat "$slurm_apt_log" >&2; rm -f "$slurm_apt_log"; return 1; }
  rm -f "$slurm_apt_log"
fi
SLURM_DIR="$(mktemp -d /tmp/hmil-bench-slurm.XXXXXX)"
chmod 755 "$SLURM_DIR"  # munged insists that every directory above its socket is world-searchable
mkdir -p "$SLURM_DIR"/{munge,db,state,spool,log}
read -r SLURM_DB_PORT SLURM_DBD_PORT SLURM_CTLD_PORT SLURM_D_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
SLURM_HOST="$(hostname -s 2>/dev/null || python3 -c 'import socket; print(socket.gethostname().split(".")[0])')"
SLURM_CPUS="$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')"
# RealMemory only bounds what a job may request (CR_CPU: memory is not a consumable resource): 3/4 of what
# is available now, so that slurmd never finds less memory than configured.
SLURM_MEM_MB="$(awk '/^MemAvailable:/ {print int($2 / 1024 * 3 / 4)}' /proc/meminfo)"
slurm_log_tail() { local f; for f in "$SLURM_DIR"/log/* "$SLURM_DIR"/db/mariadb.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done; }
slurm_fail() { echo "Slurm: $*" >&2; slurm_log_tail >&2; }
slurm_wait() {  # slurm_wait SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ "$SECONDS" -lt "$deadline" ] || return 1; sleep 0.2; done
}
slurm_alive() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }  # zombies are dead
stop_slurm() {
  [ -d "${SLURM_DIR:-}" ] || return 0
  timeout 10 scancel --quiet --user="$(id -un)" >/dev/null 2>&1 || true
  local name pid
  for name in slurmd slurmctld slurmdbd db/mariadb munge/munged; do
    pid="$(cat "$SLURM_DIR/$name.pid" 2>/dev/null)" || continue
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do slurm_alive "$pid" || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$SLURM_DIR"
  unset HMIL_BENCH_TEST_SLURM HMIL_BENCH_SLURM_PARTITION HMIL_BENCH_SLURM_DIR SLURM_CONF
}
# Run stop_slurm before whatever EXIT trap is already set (postgres.sh's stop_postgres), not instead of it.
eval "slurm_prev_trap=($(trap -p EXIT))"
trap "stop_slurm; ${slurm_prev_trap[2]:-}" EXIT
unset slurm_prev_trap

# munge: a fresh key and a private socket, so that a system munged (if any) is neither needed nor disturbed.
mungekey --create --keyfile="$SLURM_DIR/munge/munge.key" >/dev/null 2>&1 \
  || dd if=/dev/urandom of="$SLURM_DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$SLURM_DIR/munge/munge.key"
SLURM_MUNGE_SOCKET="$SLURM_DIR/munge/munge.socket"
munged --socket="$SLURM_MUNGE_SOCKET" --key-file="$SLURM_DIR/munge/munge.key" \
  --log-file="$SLURM_DIR/log/munged.log" --pid-file="$SLURM_DIR/munge/munged.pid" \
  --seed-file="$SLURM_DIR/munge/munged.seed" || { slurm_fail "munged did not start"; return 1; }

# MariaDB for slurmdbd: loopback only, no durability (a CI throwaway), one password-protected user.
mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$SLURM_DIR/db/data" --skip-test-db \
  --skip-name-resolve --auth-root-authentication-method=normal >"$SLURM_DIR/db/install.log" 2>&1 \
  || { cat "$SLURM_DIR/db/install.log" >&2; slurm_fail "mariadb-install-db failed"; return 1; }
mariadbd --no-defaults --user="$(id -un)" --datadir="$SLURM_DIR/db/data" --socket="$SLURM_DIR/db/mariadb.sock" \
  --port="$SLURM_DB_PORT" --bind-address=127.0.0.1 --pid-file="$SLURM_DIR/db/mariadb.pid" \
  --log-error="$SLURM_DIR/db/mariadb.log" --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
  --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-lock-wait-timeout=900 \
  </dev/null >/dev/null 2>&1 &
slurm_sql() { mariadb --no-defaults -S "$SLURM_DIR/db/mariadb.sock" -u root "$@"; }
slurm_wait 60 slurm_sql -e 'SELECT 1' || { slurm_fail "MariaDB did not start"; return 1; }
slurm_sql -e "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'hmil-ci';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || { slurm_fail "could not create the slurm DB user"; return 1; }

export SLURM_CONF="$SLURM_DIR/slurm.conf"
cat >"$SLURM_DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$SLURM_MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$SLURM_DBD_PORT
SlurmUser=$(id -un)
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$SLURM_DB_PORT
StorageUser=slurm
StoragePass=hmil-ci
StorageLoc=slurm_acct_db
LogFile=$SLURM_DIR/log/slurmdbd.log
PidFile=$SLURM_DIR/slurmdbd.pid
EOF
chmod 600 "$SLURM_DIR/slurmdbd.conf"  # slurmdbd refuses a readable one (it holds the DB password)
# SlurmctldHost must be this host's short name (slurmctld refuses to run elsewhere); addresses are pinned to
# 127.0.0.1 so that nothing depends on DNS or /etc/hosts. AccountingStoragePass is the munge socket used to
# talk to slurmdbd (AuthInfo does not cover that connection). KillWait: SIGKILL 5 s after a cancel's SIGTERM
# (submitit's workers ignore SIGTERM). config_overrides: trust this file, never drain the node over hardware.
# cred_expire=10: a requeued job may start again after 10 s instead of the default 120 s (the requeue test).
cat >"$SLURM_CONF" <<EOF
ClusterName=hmilci
SlurmctldHost=$SLURM_HOST(127.0.0.1)
SlurmctldPort=$SLURM_CTLD_PORT
SlurmdPort=$SLURM_D_PORT
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SLURM_MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$SLURM_DBD_PORT
AccountingStoragePass=$SLURM_MUNGE_SOCKET
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=5
SlurmdParameters=config_overrides
NodeName=$SLURM_HOST NodeAddr=127.0.0.1 NodeHostname=$SLURM_HOST CPUs=$SLURM_CPUS RealMemory=$SLURM_MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$SLURM_HOST Default=YES MaxTime=INFINITE State=UP
EOF
slurmdbd || { slurm_fail "slurmdbd did not start"; return 1; }
slurm_wait 60 sacctmgr -n list cluster || { slurm_fail "slurmdbd does not answer"; return 1; }
sacctmgr -i add cluster hmilci >/dev/null || { slurm_fail "could not register the cluster with slurmdbd"; return 1; }
slurmctld || { slurm_fail "slurmctld did not start"; return 1; }
slurmd -N "$SLURM_HOST" || { slurm_fail "slurmd did not start"; return 1; }
slurm_idle() { [ "$(timeout 5 sinfo -h -o %T)" = idle ]; }
slurm_wait 60 slurm_idle || { sinfo -N -l >&2 || true; slurm_fail "the node did not become idle"; return 1; }
export HMIL_BENCH_SLURM_DIR="$SLURM_DIR" HMIL_BENCH_TEST_SLURM=1 HMIL_BENCH_SLURM_PARTITION=debug
echo "Slurm $(sinfo -V | awk '{print $2}') on $SLURM_HOST: ${SLURM_CPUS} CPUs, ${SLURM_MEM_MB} MB, partition debug" \
  "(SLURM_CONF=$SLURM_CONF)"
