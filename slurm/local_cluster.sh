#!/usr/bin/env bash
# A real single-machine SLURM cluster (slurmctld + slurmd + slurmdbd with MariaDB accounting,
# munge auth) started without systemd, for the launcher tests and for trying the pipeline's
# cluster mode on a laptop. Accounting is on because submitit reads job states through sacct.
#
#   slurm/local_cluster.sh install|start|stop|status
#
# Needs root and apt (Debian 12: slurm-wlm 22.05). Everything the script starts is recorded in
# $SLURM_LOCAL_DIR/pids and `stop` signals only those PIDs; daemons it did not start are left alone.
#
# The node advertises the hardware of the shipped cluster presets' GPU nodes, whatever this machine
# has (slurmd's config_overrides): 64 CPUs, 1 TiB and 8 GPUs, the GPUs being stand-in character
# devices (the kernel's null device under new names), so `cluster=slurm` is submitted unchanged and
# sbatch accepts or refuses it as a real cluster would. The jobs run on this machine's cores and see
# no CUDA device. Knobs: SLURM_LOCAL_DIR (/tmp/pipeline-slurm), SLURM_LOCAL_CPUS (64),
# SLURM_LOCAL_MEM_MB (1048576), SLURM_LOCAL_GPUS (8), SLURM_LOCAL_PARTITION (debug).
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/pipeline-slurm}
CPUS=${SLURM_LOCAL_CPUS:-64}
MEM_MB=${SLURM_LOCAL_MEM_MB:-1048576}
GPUS=${SLURM_LOCAL_GPUS:-8}
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
DB_PASS=${SLURM_LOCAL_DB_PASS:-pipeline-local}
PIDS=$DIR/pids
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)

log() { echo "[local_cluster] $*" >&2; }

alive() {  # a live (non-zombie) process with this pid; PID 1 here reaps late, so check /proc state
    local pid=$1 state
    [ -r "/proc/$pid/stat" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
    [ "$state" != "Z" ]
}

saved_alive() { [ -f "$PIDS/$1" ] && alive "$(cat "$PIDS/$1")"; }

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local limit=$1 what=$2; shift 2
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then log "timed out waiting for $what"; return 1; fi
        sleep 0.2
    done
}

install_packages() {
    local missing=()
    for bin in munged slurmctld slurmd sbatch slurmdbd mariadbd; do
        command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null 2>&1
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    }
}

make_gpu_devices() {  # stand-ins: character devices with the null device's numbers (1, 3)
    mkdir -p "$DIR/dev"
    local k
    for ((k = 0; k < GPUS; k++)); do
        [ -c "$DIR/dev/gpu$k" ] || mknod "$DIR/dev/gpu$k" c 1 3
    done
}

write_configs() {
    mkdir -p /etc/slurm "$DIR"/{state,spool,log,run}
    local gres="" gres_types=""
    if [ "$GPUS" -gt 0 ]; then
        make_gpu_devices
        gres="Gres=gpu:$GPUS"
        gres_types="GresTypes=gpu"
        echo "NodeName=localhost Name=gpu File=$DIR/dev/gpu[0-$((GPUS - 1))]" > /etc/slurm/gres.conf
    else
        rm -f /etc/slurm/gres.conf
    fi
    cat > /etc/slurm/slurm.conf <<EOF
# written by slurm/local_cluster.sh
ClusterName=pipelinelocal
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerType=sched/backfill
# Start jobs at once and rescan often: requeued jobs are only picked up by the periodic pass.
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
KillWait=5
MinJobAge=600
InactiveLimit=0
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
$gres_types
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB $gres State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat > /etc/slurm/slurmdbd.conf <<EOF
# written by slurm/local_cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
    # A working munged (ours or foreign) is reused, never killed; pgrep would also match a zombie.
    if munge -n </dev/null >/dev/null 2>&1; then return 0; fi
    [ -f /etc/munge/munge.key ] || mungekey --create >/dev/null 2>&1 || true
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    wait_for 10 munged test -s /run/munge/munged.pid
    cp /run/munge/munged.pid "$PIDS/munged"
}

start_mariadb() {
    if mysqladmin --socket=/run/mysqld/mysqld.sock ping >/dev/null 2>&1; then :; else
        mkdir -p /run/mysqld "$DIR/mysql" && chown mysql:mysql /run/mysqld "$DIR/mysql"
        setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
            --pid-file=/run/mysqld/mysqld.pid --bind-address=127.0.0.1 --innodb-lock-wait-timeout=900 \
            --log-error="$DIR/mysql/mariadb.err" </dev/null >/dev/null 2>&1 &
        echo $! > "$PIDS/mariadbd"
        wait_for 30 mariadb mysqladmin --socket=/run/mysqld/mysqld.sock ping
    fi
    mysql --socket=/run/mysqld/mysqld.sock -u root <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_daemon() {  # start_daemon NAME PIDFILE CMD...
    local name=$1 pidfile=$2; shift 2
    if saved_alive "$name"; then return 0; fi
    "$@"
    wait_for 15 "$name" test -s "$pidfile"
    cp "$pidfile" "$PIDS/$name"
}

cmd_start() {
    [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
    install_packages
    mkdir -p "$PIDS"
    write_configs
    start_munge
    start_mariadb
    start_daemon slurmdbd "$DIR/run/slurmdbd.pid" slurmdbd
    wait_for 30 slurmdbd bash -c "exec 3<>/dev/tcp/127.0.0.1/6819"
    start_daemon slurmctld "$DIR/run/slurmctld.pid" slurmctld
    start_daemon slurmd "$DIR/run/slurmd.pid" slurmd -N localhost
    wait_for 30 "controller" scontrol ping
    wait_for 30 "an idle node" bash -c "sinfo -h -o %T | grep -Eq 'idle|mix|alloc'"
    wait_for 30 "cluster registration in accounting" bash -c "sacctmgr -n -P show cluster format=cluster | grep -q pipelinelocal"
    log "cluster up: partition $PARTITION, $CPUS cpus, $MEM_MB MB, $GPUS gpus, state in $DIR"
}

cmd_stop() {
    if command -v scancel >/dev/null && saved_alive slurmctld; then
        scancel --full --quiet --partition="$PARTITION" 2>/dev/null || true
        sleep 1
    fi
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        [ -f "$PIDS/$name" ] || continue
        local pid; pid=$(cat "$PIDS/$name")
        if alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            local end=$((SECONDS + 20))
            while alive "$pid" && [ $SECONDS -lt $end ]; do sleep 0.2; done
            alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$PIDS/$name"
    done
    log "stopped"
}

cmd_status() {
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        if saved_alive "$name"; then echo "$name: running (pid $(cat "$PIDS/$name"))"; else echo "$name: not started by this script"; fi
    done
    command -v sinfo >/dev/null && sinfo 2>/dev/null || true
}

case "${1:-}" in
    install) install_packages ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
