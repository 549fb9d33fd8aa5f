#!/usr/bin/env bash
# Start, stop or inspect a throwaway single-node SLURM cluster for vgen's CI and tests, with job
# accounting (slurmdbd on a private MariaDB) as real clusters have: submitit polls `sacct` to learn
# that a task died, so without it a killed task would leave the submitting process waiting forever.
#
# Usage:
#   eval "$(scripts/slurm_cluster.sh start)"   # stdout is exactly `export SLURM_CONF=...`
#   scripts/slurm_cluster.sh status            # exit 0 when all daemons run and the node is up
#   scripts/slurm_cluster.sh stop              # kill our daemons, delete the state dir
#
# Everything (munge key and socket, slurm.conf, slurmdbd.conf, the MariaDB data dir, pid files,
# spool, state, logs) lives in ${VGEN_SLURM_DIR:-/tmp/vgen-slurm}; nothing under /etc is written,
# so clients need SLURM_CONF. munged and MariaDB run on private sockets, so a system munged, SLURM
# or MariaDB is untouched (the ports 6817/6818/6819/6820 must be free, override with
# VGEN_SLURM_CTLD_PORT, VGEN_SLURM_D_PORT, VGEN_SLURM_DBD_PORT, VGEN_SLURM_DB_PORT).
# Needs root. Exit codes: 0 ok, 1 failure, 2 usage, 3 cannot run here (no root, install failed),
# so callers can skip.
set -euo pipefail

STATE_DIR="${VGEN_SLURM_DIR:-/tmp/vgen-slurm}"
CTLD_PORT="${VGEN_SLURM_CTLD_PORT:-6817}"
SLURMD_PORT="${VGEN_SLURM_D_PORT:-6818}"
DBD_PORT="${VGEN_SLURM_DBD_PORT:-6819}"
DB_PORT="${VGEN_SLURM_DB_PORT:-6820}"
READY_TIMEOUT_S="${VGEN_SLURM_READY_TIMEOUT_S:-60}"
MARKER="$STATE_DIR/.vgen-slurm"
CONF="$STATE_DIR/slurm.conf"
MUNGE_DIR="$STATE_DIR/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
DB_DIR="$STATE_DIR/mariadb"
DB_SOCKET="$DB_DIR/mariadb.sock"  # in the data dir: mariadbd runs as mysql
DB_NAME=slurm_acct_db
NODE="$(hostname -s)"

log() { echo "slurm_cluster: $*" >&2; }
die() { local code="$1"; shift; log "ERROR: $*"; exit "$code"; }

# daemon name -> pid file, as configured below
pid_file() { echo "$STATE_DIR/run/$1.pid"; }

# True when pid is a running (not zombie) process whose command is exactly name. Zombies count
# as gone: in containers pid 1 may reap exited daemons only seconds later.
pid_runs() {
    local name="$1" pid="$2" stat
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ "${stat##*) }" != Z* ]]
}

# True when the daemon's pid file names a running process of that daemon.
daemon_alive() {
    local name="$1" file pid
    file="$(pid_file "$name")"
    [[ -s "$file" ]] || return 1
    pid="$(tr -d '[:space:]' <"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] && pid_runs "$name" "$pid"
}

# Every daemon of the cluster, in start order.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

all_daemons_alive() {
    local name
    for name in "${DAEMONS[@]}"; do
        daemon_alive "$name" || return 1
    done
}

node_state() {
    SLURM_CONF="$CONF" timeout 10 sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n1 || true
}

ensure_packages() {
    local tool
    for tool in sbatch sacct slurmctld slurmd slurmdbd munged mariadbd mariadb-install-db; do
        command -v "$tool" >/dev/null || break
    done
    command -v "$tool" >/dev/null && return
    log "installing slurmctld slurmd slurmdbd slurm-client munge mariadb-server (apt)"
    if ! { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            slurmctld slurmd slurmdbd slurm-client munge mariadb-server; } >&2; then
        die 3 "could not install SLURM/munge/MariaDB Debian packages; skip SLURM tests on this machine"
    fi
}

start_munged() {
    install -d -o munge -g munge -m 0711 "$MUNGE_DIR"  # x for all: non-root clients reach the socket
    if [[ ! -s "$MUNGE_DIR/munge.key" ]]; then
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
        chown munge:munge "$MUNGE_DIR/munge.key"
        chmod 0400 "$MUNGE_DIR/munge.key"
    fi
    # munged must run as the munge user; it writes its own pid file and daemonizes.
    runuser -u munge -- munged --force \
        --key-file="$MUNGE_DIR/munge.key" \
        --socket="$MUNGE_SOCKET" \
        --pid-file="$MUNGE_DIR/munged.pid" \
        --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" >&2 \
        || die 1 "munged failed to start; see $MUNGE_DIR/munged.log"
    ln -sf "$MUNGE_DIR/munged.pid" "$(pid_file munged)"
}

# MariaDB for slurmdbd, run directly (no systemd in containers): a private data dir, socket and
# TCP port on 127.0.0.1, no /etc/mysql config (--no-defaults). Ready when `mariadb-admin ping` answers.
start_mariadb() {
    local deadline launched
    install -d -o mysql -g mysql -m 0700 "$DB_DIR"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" --skip-test-db \
        --auth-root-authentication-method=socket >"$STATE_DIR/log/mariadb-install.log" 2>&1 \
        || die 1 "mariadb-install-db failed; see $STATE_DIR/log/mariadb-install.log"
    setsid mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" --socket="$DB_SOCKET" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$DB_DIR/mariadbd.pid" --log-error="$DB_DIR/mariadb.log" </dev/null >/dev/null 2>&1 &
    launched=$!
    ln -sf "$DB_DIR/mariadbd.pid" "$(pid_file mariadbd)"  # now, so 'stop' finds it even if it never gets ready
    deadline=$((SECONDS + READY_TIMEOUT_S))
    until mariadb-admin --no-defaults --socket="$DB_SOCKET" -uroot ping >/dev/null 2>&1; do
        kill -0 "$launched" 2>/dev/null || die 1 "MariaDB exited while starting; see $DB_DIR/mariadb.log"
        ((SECONDS < deadline)) || {
            tail -n 20 "$DB_DIR/mariadb.log" >&2 2>/dev/null || true
            die 1 "MariaDB not ready after ${READY_TIMEOUT_S}s; see $DB_DIR/mariadb.log"
        }
        sleep 0.5
    done
}

# The accounting database and its user (password generated per cluster, stored only in the
# root-only slurmdbd.conf).
create_accounting_db() {
    local password
    password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    mariadb --no-defaults --socket="$DB_SOCKET" -uroot <<EOF || die 1 "could not create the accounting database"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON $DB_NAME.* TO 'slurm'@'127.0.0.1';
EOF
    # slurmdbd reads slurmdbd.conf next to SLURM_CONF and refuses it unless SlurmUser owns it, mode 600.
    install -m 0600 /dev/null "$STATE_DIR/slurmdbd.conf"
    cat >"$STATE_DIR/slurmdbd.conf" <<EOF
# Generated by vgen scripts/slurm_cluster.sh; deleted by 'stop'.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$(pid_file slurmdbd)
LogFile=$STATE_DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$password
StorageLoc=$DB_NAME
EOF
}

# slurmdbd daemonizes; it is ready when sacctmgr gets an answer through it.
start_slurmdbd() {
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    slurmdbd >&2 || die 1 "slurmdbd failed; see $STATE_DIR/log/slurmdbd.log"
    until timeout 10 sacctmgr -n show cluster >/dev/null 2>&1; do
        ((SECONDS < deadline)) || {
            tail -n 20 "$STATE_DIR/log/slurmdbd.log" >&2 2>/dev/null || true
            die 1 "slurmdbd not ready after ${READY_TIMEOUT_S}s; see $STATE_DIR/log/slurmdbd.log"
        }
        sleep 0.5
    done
}

write_conf() {
    local node_line
    # `slurmd -C` prints the node exactly as slurmd will register it (CPUs, sockets, RealMemory),
    # so the node cannot be drained for a hardware mismatch.
    node_line="$(slurmd -C | head -n1)"
    [[ "$node_line" == NodeName=* ]] || die 1 "unexpected 'slurmd -C' output: $node_line"
    cat >"$CONF" <<EOF
# Generated by vgen scripts/slurm_cluster.sh; deleted by 'stop'.
ClusterName=vgen
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays a requeued job's restart (default 120 s); 10 s keeps requeue tests short.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$(pid_file slurmctld)
SlurmdPidFile=$(pid_file slurmd)
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET  # for slurmdbd connections: the munge socket, not a password
JobCompType=jobcomp/none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5  # a requeued job starts soon after its BeginTime
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_for_idle() {
    local deadline=$((SECONDS + READY_TIMEOUT_S)) state=""
    while ((SECONDS < deadline)); do
        state="$(node_state)"
        case "$state" in
            idle | mix | alloc) return 0 ;;
        esac
        sleep 1
    done
    log "node $NODE not idle after ${READY_TIMEOUT_S}s (state: '${state:-no answer}')"
    tail -n 20 "$STATE_DIR/log/slurmctld.log" "$STATE_DIR/log/slurmd.log" >&2 2>/dev/null || true
    return 1
}

stop_daemon() {
    local name="$1" pid i
    if daemon_alive "$name"; then
        pid="$(tr -d '[:space:]' <"$(pid_file "$name")")"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            pid_runs "$name" "$pid" || return 0
            sleep 0.1
        done
        log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
}

# Job steps (slurmstepd and the job's processes) outlive slurmd, so cancel every job while the
# controller still runs and wait (bounded) for the steps to exit.
cancel_jobs() {
    local jobs i
    daemon_alive slurmctld || return 0
    jobs="$(SLURM_CONF="$CONF" timeout 10 squeue -h -o '%i' 2>/dev/null || true)"
    [[ -n "$jobs" ]] || return 0
    log "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
    # shellcheck disable=SC2086  # one argument per job id
    SLURM_CONF="$CONF" scancel --full $jobs 2>/dev/null || true
    # Cancelled jobs stay listed (state CG) until their steps have exited.
    for ((i = 0; i < 50; i++)); do
        [[ -z "$(SLURM_CONF="$CONF" timeout 10 squeue -h -o '%i' 2>/dev/null)" ]] && return 0
        sleep 0.2
    done
    log "job steps still running after cancel; they may outlive the cluster"
}

cmd_stop() {
    [[ -d "$STATE_DIR" ]] || { log "not running (no $STATE_DIR)"; return 0; }
    [[ -e "$MARKER" ]] || die 1 "$STATE_DIR exists but was not created by this script; not touching it"
    cancel_jobs
    # slurmd before the controller, then accounting, munged last: each needs the next one to shut
    # down cleanly.
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon slurmdbd
    stop_daemon mariadbd
    stop_daemon munged
    rm -rf -- "$STATE_DIR"
    log "stopped; removed $STATE_DIR"
}

cmd_start() {
    [[ "$(id -u)" == 0 ]] || die 3 "must run as root (slurmd and munged switch users)"
    ensure_packages
    if [[ -e "$MARKER" ]] && all_daemons_alive && [[ -n "$(node_state)" ]]; then
        log "already running ($STATE_DIR)"
        wait_for_idle || die 1 "cluster is running but node $NODE is not usable"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    # Partial or stale cluster from an earlier run: clear it and start clean.
    if [[ -d "$STATE_DIR" ]]; then
        cmd_stop
    fi
    local t0=$SECONDS
    install -d -m 0755 "$STATE_DIR" "$STATE_DIR/run" "$STATE_DIR/state" "$STATE_DIR/spool" \
        "$STATE_DIR/log"
    touch "$MARKER"
    start_munged
    write_conf
    export SLURM_CONF="$CONF"
    start_mariadb
    create_accounting_db
    start_slurmdbd
    slurmctld >&2 || die 1 "slurmctld failed; see $STATE_DIR/log/slurmctld.log"
    slurmd >&2 || die 1 "slurmd failed; see $STATE_DIR/log/slurmd.log"
    wait_for_idle || die 1 "cluster did not come up; run '$0 stop' to clean up"
    log "up in $((SECONDS - t0))s: node $NODE, partition debug, state dir $STATE_DIR"
    echo "export SLURM_CONF=$CONF"
}

cmd_status() {
    local name ok=0
    for name in "${DAEMONS[@]}"; do
        if daemon_alive "$name"; then
            echo "$name: running (pid $(tr -d '[:space:]' <"$(pid_file "$name")"))"
        else
            echo "$name: not running"
            ok=1
        fi
    done
    if ((ok == 0)); then
        echo "SLURM_CONF=$CONF"
        SLURM_CONF="$CONF" sinfo || ok=1
    fi
    return "$ok"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
