#!/usr/bin/env bash
# A real SLURM cluster test: a single-node SLURM cluster on loopback runs the cluster test config
# (tests/cluster/config.yaml: the three TEST FIXTURE studies, two real fits) through
# `--profile profiles/slurm`, and this script checks that
#   1. every job of a rule that is not a localrule ran as a SLURM job (its SLURM log file, and
#      slurmctld's record of the job finishing);
#   2. every effects table, and the main fit's diagnostics, are byte-identical to a local run
#      (`--cores 2`) of the same config, which compiled its models into an empty compile cache
#      while the SLURM runs load them from a copy of that cache: two Snakemake processes in two
#      directories, one cold cache and one warm, give the same bytes (the SLURM fits compile no
#      model code anew);
#   3. a fit job killed by `scancel` mid-run fails with a message naming the rule and its log
#      (run 1, `--retries 0`), and is retried per the profile (run 2, the profile's `retries`);
#   4. the rerun (run 2) resumes: fits finished in run 1 are not redone;
#   5. the simulation-based calibration (2 tiny datasets, sampler mocked) runs through the same
#      profile, each dataset its own SLURM job.
# It installs Debian's slurm-wlm and munge when missing (needs root and apt), installs the SLURM
# executor plugin into the venv (`pip install -e ".[cluster]"`) when missing, and always stops the
# daemons it started, by their pids. Everything else lives in a temporary directory, removed at
# the end unless CRSMETA_SLURM_KEEP=1.
#
#     bash tests/cluster/run_slurm.sh          # from anywhere; VENV=... to use another venv
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=$VENV/bin/python
CONFIG=tests/cluster/config.yaml
# the project's files a run needs (as tests/test_workflow.py copies them), and the profile
PROJECT_PARTS=(Snakefile workflow config resources tests/config tests/data tests/cluster profiles docs/model.md)
SLURMCTLD_PORT=${CRSMETA_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${CRSMETA_SLURMD_PORT:-16818}
STATUS_TIMEOUT=${CRSMETA_SLURM_TIMEOUT:-900}  # seconds a run may take before the test gives up

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crsmeta-slurm.XXXXXX")
DAEMON_PIDS=()
SYSTEM_CONF=/etc/slurm/slurm.conf
CONF_LINKED=0
CANCELLED_IDS=()
START=$(date +%s)

say() { printf '[run_slurm %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
fail() {
    say "FAILED: $*"
    exit 1
}

cleanup() {
    local status=$?
    if [[ -n ${RUN_PID:-} ]] && kill -0 "$RUN_PID" 2>/dev/null; then kill "$RUN_PID" 2>/dev/null || true; fi
    if [[ -n ${SLURM_CONF:-} ]] && ((${#DAEMON_PIDS[@]})); then
        # our own cluster (own configuration and ports): every job in it is this script's
        local jobs
        jobs=$(squeue -h -t PENDING,RUNNING,COMPLETING -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 30); do [[ -z $(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null) ]] && break; sleep 0.5; done
        fi
    fi
    local pid
    for pid in "${DAEMON_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${DAEMON_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if ((${#DAEMON_PIDS[@]})); then say "stopped the daemons (pids ${DAEMON_PIDS[*]})"; fi
    if ((CONF_LINKED)); then rm -f "$SYSTEM_CONF"; fi
    if [[ ${CRSMETA_SLURM_KEEP:-0} == 1 || $status != 0 ]]; then
        say "kept $WORK (slurmctld/slurmd logs in $WORK/slurm, runs in $WORK/{local,slurm})"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. SLURM and munge from Debian's packages, the executor plugin in the venv -------------------
install_slurm() {
    local missing=()
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || fail "needs ${missing[*]} from Debian's packages; run as root or install them"
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -y -q install "${missing[@]}" >"$WORK/apt.log" 2>&1 \
        || { apt-get -q update >>"$WORK/apt.log" 2>&1 && apt-get -y -q install "${missing[@]}" >>"$WORK/apt.log" 2>&1; } \
        || fail "apt-get could not install ${missing[*]}: see $WORK/apt.log"
}

install_plugin() {
    "$PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null && return 0
    say "installing the cluster extra (snakemake-executor-plugin-slurm) into $VENV"
    "$VENV/bin/pip" install -q -e "$ROOT[cluster]" || fail "pip could not install $ROOT[cluster]"
}

# --- 2. a single-node cluster on loopback ----------------------------------------------------------
write_slurm_conf() {
    local node cpus memory
    node=$(hostname -s)
    cpus=$(nproc)
    ((cpus >= 2)) || cpus=2  # at least two job slots; config_overrides lets the node claim them
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$WORK/slurm/state" "$WORK/slurm/spool" "$WORK/munge"
    chmod 755 "$WORK/munge"  # munged wants its socket directory searchable; the key is 0600
    cat >"$WORK/slurm/slurm.conf" <<EOF
# written by tests/cluster/run_slurm.sh: one node on loopback, no accounting storage
ClusterName=crsmeta-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/slurm/state
SlurmdSpoolDir=$WORK/slurm/spool
SlurmctldPidFile=$WORK/slurm/slurmctld.pid
SlurmdPidFile=$WORK/slurm/slurmd.pid
SlurmctldLogFile=$WORK/slurm/slurmctld.log
SlurmdLogFile=$WORK/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# finished jobs stay visible to squeue for 5 minutes: the executor's status command is squeue
# (profiles/slurm), since sacct needs slurmdbd
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$WORK/slurm/slurm.conf
    # The executor's job step (snakemake-executor-plugin-slurm-jobstep) starts the job's `srun`
    # without any SLURM_* variable, SLURM_CONF included, so inside a job srun reads only the default
    # location: link it there for the time of the test (an earlier run's stale link is replaced;
    # any other file there is left alone, and the test stops).
    if [[ -L $SYSTEM_CONF && $(readlink "$SYSTEM_CONF") == */crsmeta-slurm.*/slurm/slurm.conf ]]; then
        rm -f "$SYSTEM_CONF"
    fi
    [[ ! -e $SYSTEM_CONF && ! -L $SYSTEM_CONF ]] \
        || fail "$SYSTEM_CONF exists: this test links its own cluster's configuration there (the job step's srun reads only that path); run it on a machine without a SLURM configuration"
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -s "$SLURM_CONF" "$SYSTEM_CONF"
    CONF_LINKED=1
}

start_daemons() {
    dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
    chmod 600 "$WORK/munge/munge.key"
    munged --foreground --force --socket="$WORK/munge/munge.socket" --key-file="$WORK/munge/munge.key" \
        --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munge/munged.log" \
        --seed-file="$WORK/munge/munged.seed" >"$WORK/munge/munged.out" 2>&1 &
    DAEMON_PIDS+=($!)
    for _ in $(seq 50); do [[ -S $WORK/munge/munge.socket ]] && break; sleep 0.1; done
    [[ -S $WORK/munge/munge.socket ]] || fail "munged did not start: see $WORK/munge/munged.log"
    slurmctld -D -f "$SLURM_CONF" >"$WORK/slurm/slurmctld.out" 2>&1 &
    DAEMON_PIDS+=($!)
    slurmd -D -f "$SLURM_CONF" >"$WORK/slurm/slurmd.out" 2>&1 &
    DAEMON_PIDS+=($!)
    say "started munged, slurmctld and slurmd (pids ${DAEMON_PIDS[*]})"
    local state=""
    for _ in $(seq 120); do
        state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
        [[ $state == idle ]] && break
        sleep 0.5
    done
    [[ $state == idle ]] || fail "the node is not idle (state '$state'): see $WORK/slurm/slurm{ctld,d}.log"
    local probe
    probe=$(sbatch --parsable -o "$WORK/slurm/probe.out" --wrap 'echo probe ok') || fail "sbatch failed"
    for _ in $(seq 60); do grep -q "probe ok" "$WORK/slurm/probe.out" 2>/dev/null && break; sleep 0.5; done
    grep -q "probe ok" "$WORK/slurm/probe.out" 2>/dev/null || fail "probe job $probe did not run"
    say "cluster up: $(sinfo -h -N -o '%N %c CPUs %m MB %t')"
}

# --- 3. the workflow, locally and through the profile ----------------------------------------------
copy_project() {
    local target=$1 part
    mkdir -p "$target"
    for part in "${PROJECT_PARTS[@]}"; do
        mkdir -p "$target/$(dirname "$part")"
        cp -r "$ROOT/$part" "$target/$part"
    done
}

snakemake_in() {  # snakemake_in <project> <log> <arguments...>
    local project=$1 log=$2
    shift 2
    (cd "$project" && exec "$PYTHON" -m snakemake --configfile "$CONFIG" "$@") >"$log" 2>&1
}

# the executor flags only this test adds: status checks soon after submitting (the profile keeps
# the plugin's 40 s for a real cluster), and successful jobs' SLURM logs kept (they are this
# script's evidence that a job ran under SLURM). No account: the plugin warns that it cannot guess
# one and submits without.
TEST_CLUSTER_FLAGS=(--slurm-init-seconds-before-status-checks 2 --slurm-keep-successful-logs)

slurm_run_in_background() {  # slurm_run_in_background <log> <extra arguments...>; sets RUN_PID
    local log=$1
    shift
    RUN_START=$(date +%s)
    snakemake_in "$WORK/slurm" "$log" --profile profiles/slurm "${TEST_CLUSTER_FLAGS[@]}" "$@" &
    RUN_PID=$!
}

# cancel_a_fit <log> <skip-analysis>: waits for a fit_model SLURM job other than <skip-analysis> to
# be running its script (its log written since the run started), scancels it, and sets CANCELLED
# (the analysis) and CANCELLED_ID
cancel_a_fit() {
    local log=$1 skip=$2 deadline=$(( $(date +%s) + STATUS_TIMEOUT )) id state comment analysis fit_log
    while (( $(date +%s) < deadline )); do
        kill -0 "$RUN_PID" 2>/dev/null || fail "the run ended before a fit job could be cancelled: see $log"
        while IFS='|' read -r id state comment; do
            [[ $state == RUNNING && $comment == rule_fit_model_wildcards_* ]] || continue
            analysis=${comment#rule_fit_model_wildcards_}
            fit_log=$WORK/slurm/logs/fit_model/$analysis.log
            [[ $analysis != "$skip" && -s $fit_log ]] && (( $(date -r "$fit_log" +%s) > RUN_START )) || continue
            scancel "$id"
            say "scancel $id: the fit_model job of '$analysis', mid-run"
            CANCELLED=$analysis
            CANCELLED_ID=$id
            CANCELLED_IDS+=("$id")
            return 0
        done < <(squeue -h -o '%i|%T|%k')
        sleep 0.5
    done
    fail "no fit_model job to cancel within ${STATUS_TIMEOUT}s: see $log"
}

wait_for_run() {  # wait_for_run <log>: waits for the run in the background, sets RUN_STATUS
    local log=$1 deadline=$(( $(date +%s) + STATUS_TIMEOUT ))
    while kill -0 "$RUN_PID" 2>/dev/null; do
        if (( $(date +%s) >= deadline )); then
            kill "$RUN_PID"
            fail "the run took more than ${STATUS_TIMEOUT}s: see $log"
        fi
        sleep 1
    done
    RUN_STATUS=0
    wait "$RUN_PID" || RUN_STATUS=$?
}

# jobs_in <snakemake log>...: "<rule> <wildcards> <local|slurm>" for each job the logs announce
# ("localrule x:" runs on the submitting machine, "rule x:" is submitted; a dry run says "rule")
jobs_in() {
    awk 'function flush() { if (rule != "") print rule, (wildcards == "" ? "-" : wildcards), kind; rule = "" }
         /^(local)?rule [A-Za-z0-9_]+:$/ {
            flush(); kind = ($1 == "localrule") ? "local" : "slurm"; rule = $2; sub(":", "", rule); wildcards = ""
         }
         /^    wildcards: / && rule != "" {
            w = $0; sub(/^    wildcards: /, "", w); n = split(w, pairs, ", ")
            for (i = 1; i <= n; i++) { sub(/^[^=]*=/, "", pairs[i]); wildcards = wildcards (i > 1 ? "_" : "") pairs[i] }
         }
         END { flush() }' "$@"
}

# Every job of the dry run ran in run 1 or run 2; each one Snakemake submitted has a SLURM log under
# .snakemake/slurm_logs/rule_<rule>/<wildcards>/<SLURM job id>.log (written by slurmd) and
# slurmctld's record of that job finishing; a localrule has none.
check_jobs_ran_on_slurm() {
    local rule wildcards kind dir ids id succeeded submitted=0
    jobs_in "$WORK/run1.log" "$WORK/run2.log" | sort -u >"$WORK/jobs.txt"
    while read -r rule wildcards _; do
        grep -q "^$rule $wildcards " "$WORK/jobs.txt" || fail "the planned job $rule ($wildcards) ran in neither run"
    done <"$WORK/plan.txt"
    while read -r rule wildcards kind; do
        dir=$WORK/slurm/.snakemake/slurm_logs/rule_$rule
        [[ $wildcards == - ]] || dir=$dir/$wildcards
        if [[ $kind == local ]]; then
            [[ ! -e $dir ]] || fail "localrule $rule ($wildcards) has SLURM logs in $dir"
            continue
        fi
        ids=$(find "$dir" -maxdepth 1 -name '*.log' -printf '%f\n' 2>/dev/null | sed 's/\.log$//' | sort -n || true)
        [[ -n $ids ]] || fail "rule $rule ($wildcards) has no SLURM log in $dir: it did not run as a SLURM job"
        succeeded=0
        for id in $ids; do
            if grep -q "_job_complete: JobId=$id WEXITSTATUS 0\$" "$WORK/slurm/slurmctld.log"; then
                succeeded=1
            elif [[ " ${CANCELLED_IDS[*]} " == *" $id "* ]]; then
                grep -q "REQUEST_KILL_JOB JobId=$id " "$WORK/slurm/slurmctld.log" \
                    || fail "slurmctld has no record of the scancel of SLURM job $id"
            else
                fail "SLURM job $id (rule $rule, $wildcards) did not finish with status 0: see $WORK/slurm/slurmctld.log"
            fi
        done
        ((succeeded)) || fail "rule $rule ($wildcards) has no SLURM job that finished with status 0"
        submitted=$((submitted + 1))
    done <"$WORK/jobs.txt"
    # the rules that ran locally are exactly those the rule files mark `localrule: True` (and
    # `all`, which has no action)
    local marked mismatch
    marked=$(awk '/^ *(rule|checkpoint) [A-Za-z0-9_]+:/ { rule = $2; sub(":", "", rule) }
                  /^ *localrule: *True/ { print rule }' "$WORK"/slurm/workflow/rules/*.smk | tr '\n' ' ')
    mismatch=$(awk -v marked=" all $marked " '{ is_marked = index(marked, " " $1 " ") > 0 }
        $3 == "local" && !is_marked { print $1 " ran locally but is not marked localrule" }
        $3 == "slurm" && is_marked { print $1 " is marked localrule but was submitted" }' "$WORK/jobs.txt")
    [[ -z $mismatch ]] || fail "$mismatch"
    say "all $(wc -l <"$WORK/plan.txt") planned jobs ran; the $submitted non-local ones as SLURM jobs" \
        "(slurmctld saw each finish); local: $(awk '$3 == "local" {print $1}' "$WORK/jobs.txt" | sort -u | tr '\n' ' ')"
}

main() {
    install_slurm
    install_plugin
    write_slurm_conf
    start_daemons
    # the compile cache is each project's .cache (crsmeta.compile_cache), as in a user's run
    unset PYTENSOR_FLAGS NUMBA_CACHE_DIR CRSMETA_TABLE_CACHE PYTHONHASHSEED

    copy_project "$WORK/local"
    copy_project "$WORK/slurm"

    # the local run makes only what check 2 compares with: every analysis' effects table and
    # effects_all.tsv (the SLURM runs make everything, so that every rule runs as a SLURM job)
    say "local run (--cores 2) of the effects tables"
    snakemake_in "$WORK/local" "$WORK/local.log" --cores 2 results/model/effects_all.tsv \
        || fail "the local run failed: see $WORK/local.log"
    # a shared filesystem's compile cache, already warm: the SLURM jobs load the models the local
    # run compiled into its empty one, and check 2 compares their tables (cold vs warm cache)
    [[ -n $(model_code_files "$WORK/local") ]] || fail "the local run compiled no model code into its .cache"
    cp -r "$WORK/local/.cache" "$WORK/slurm/.cache"

    snakemake_in "$WORK/slurm" "$WORK/plan.log" --profile profiles/slurm "${TEST_CLUSTER_FLAGS[@]}" --dry-run \
        || fail "the dry run through the profile failed: see $WORK/plan.log"
    jobs_in "$WORK/plan.log" | sort -u >"$WORK/plan.txt"
    grep -q '^fit_model ' "$WORK/plan.txt" || fail "the dry run plans no fit_model job: see $WORK/plan.log"

    say "SLURM run 1 (--profile profiles/slurm --retries 0): one fit job is cancelled"
    slurm_run_in_background "$WORK/run1.log" --retries 0
    cancel_a_fit "$WORK/run1.log" main
    local cancelled=$CANCELLED cancelled_id=$CANCELLED_ID
    wait_for_run "$WORK/run1.log"
    ((RUN_STATUS != 0)) || fail "run 1 succeeded although SLURM job $cancelled_id was cancelled: see $WORK/run1.log"
    grep -q "Error in rule fit_model:" "$WORK/run1.log" || fail "run 1 does not name the failed rule: see $WORK/run1.log"
    grep -q "logs/fit_model/$cancelled.log" "$WORK/run1.log" || fail "run 1 does not name the failed job's log"
    grep -q "SLURM-job '$cancelled_id' failed, SLURM status is: 'CANCELLED'" "$WORK/run1.log" \
        || fail "run 1 does not say that SLURM job $cancelled_id was cancelled: see $WORK/run1.log"
    say "run 1 failed as it should: 'Error in rule fit_model', log logs/fit_model/$cancelled.log, SLURM status CANCELLED"

    # the fits run 1 finished, with their tables' times, to show that run 2 does not redo them
    local finished=() effects analysis entry now
    for effects in "$WORK"/slurm/results/model/*/effects.tsv; do
        [[ -e $effects ]] || continue
        analysis=$(basename "$(dirname "$effects")")
        [[ $analysis != "$cancelled" ]] || fail "the cancelled fit '$cancelled' left its effects table"
        finished+=("$analysis $(date -r "$effects" +%s.%N)")
    done
    ((${#finished[@]})) || fail "run 1 finished no fit before the cancelled one"

    say "SLURM run 2 (--profile profiles/slurm, its retries): resumes; its first fit job is cancelled once"
    slurm_run_in_background "$WORK/run2.log"
    cancel_a_fit "$WORK/run2.log" ""
    local recancelled=$CANCELLED recancelled_id=$CANCELLED_ID
    wait_for_run "$WORK/run2.log"
    ((RUN_STATUS == 0)) || fail "run 2 failed (status $RUN_STATUS): see $WORK/run2.log"
    grep -q "SLURM-job '$recancelled_id' failed" "$WORK/run2.log" || fail "run 2 did not see job $recancelled_id fail"
    grep -q "Trying to restart job" "$WORK/run2.log" || fail "run 2 did not retry the cancelled job: see $WORK/run2.log"
    say "run 2 retried the cancelled fit '$recancelled' (SLURM job $recancelled_id) and finished"
    for entry in "${finished[@]}"; do
        analysis=${entry%% *}
        now=$(date -r "$WORK/slurm/results/model/$analysis/effects.tsv" +%s.%N)
        [[ "$analysis $now" == "$entry" ]] || fail "run 2 redid the fit '$analysis' that run 1 had finished"
        if grep -q "^    wildcards: analysis=$analysis$" "$WORK/run2.log"; then
            fail "run 2 submitted the fit '$analysis' that run 1 had finished"
        fi
    done
    say "run 2 did not redo the fits run 1 finished: ${finished[*]%% *}"

    check_jobs_ran_on_slurm "$WORK/plan.txt"

    [[ $(model_code_files "$WORK/slurm") == $(model_code_files "$WORK/local") ]] \
        || fail "the SLURM runs compiled model code anew instead of loading the local run's cache"
    local table tables=0
    for table in "$WORK"/local/results/model/*/effects.tsv "$WORK/local/results/model/effects_all.tsv" \
                 "$WORK/local/results/model/main/diagnostics.tsv"; do
        cmp -s "$table" "$WORK/slurm/${table#"$WORK/local/"}" \
            || fail "${table#"$WORK/local/"} differs between the local and the SLURM run"
        tables=$((tables + 1))
    done
    say "all $tables tables are byte-identical to the local run's (cold compile cache there, warm here)"

    check_calibration_on_slurm
    say "passed in $(( $(date +%s) - START )) s"
}

# model_code_files <project>: the index files of the numba code PyTensor compiled for the models'
# functions (and cached under the project's .cache/pytensor), sorted; ArviZ's own numba functions,
# which the report jobs compile into .cache/numba, are not the models'
model_code_files() {
    (cd "$1" && find .cache/pytensor -name '*.nbi' | sort)
}

# the simulation-based calibration (workflow/rules/calibration.smk) through the same profile, at a
# tiny size: each simulated dataset must be its own SLURM job, then the summary. What is checked
# here is the jobs, not the sampling (the fits above sample; tests/test_calibration.py samples
# replicates), so the replicates take the tests' mocked sampler (tests/mock_sampler, prior draws)
# and compile no model: two cold compiles of a model of their own were about 200 s of this script.
# The environment is tests/conftest.py's mocked_sampler_environment, the test suite's for the same.
check_calibration_on_slurm() {
    # two datasets of one route are enough to show one SLURM job per dataset
    local n_datasets=2 route=effect_se replicate job_logs
    cat >"$WORK/slurm/calibration_small.yaml" <<YAML
calibration: {n_datasets: $n_datasets, seed: 1, draws: 50, tune: 50, chains: 2, thin_to: 49, routes: [$route]}
studies: []
YAML
    say "calibration ($n_datasets datasets, sampler mocked) through the profile"
    # sbatch passes the environment on to the jobs (SLURM's default --export=ALL)
    PYTHONPATH=$ROOT/tests/mock_sampler PYTENSOR_FLAGS=cxx=,mode=FAST_COMPILE CONFIG=calibration_small.yaml \
        snakemake_in "$WORK/slurm" "$WORK/calibration.log" --profile profiles/slurm \
        "${TEST_CLUSTER_FLAGS[@]}" || fail "the calibration run failed: see $WORK/calibration.log"
    for ((replicate = 0; replicate < n_datasets; replicate++)); do
        # the executor names a job's log folder after its wildcard values joined by "_"
        job_logs=$WORK/slurm/.snakemake/slurm_logs/rule_sbc_replicate/${route}_$replicate
        compgen -G "$job_logs/*.log" >/dev/null \
            || fail "calibration replicate $replicate did not run as a SLURM job: see $WORK/calibration.log"
        grep -q "TEST MOCK" "$job_logs"/*.log \
            || fail "calibration replicate $replicate did not take the mocked sampler: see $job_logs"
    done
    [[ -s $WORK/slurm/results/calibration/sbc_summary.tsv ]] \
        || fail "the calibration wrote no summary: see $WORK/calibration.log"
    say "calibration: each of the $n_datasets datasets ran as its own SLURM job, then the summary"
}

main "$@"
