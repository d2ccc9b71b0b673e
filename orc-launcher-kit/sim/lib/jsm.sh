# The simulator's IBM JSM: a registry of the jsrun steps of each LSF job, in
# $ORC_SIM_SPOOL/jsm-$LSB_JOBID/: <id>.state holds `<status> <exit code> <nrs>`
# (Running/Complete/Killed; -1 while running), <id>.pids the ranks' process ids.

. "$(dirname "${BASH_SOURCE[0]}")/nodes.sh"

jsm_dir() {
    echo "${ORC_SIM_SPOOL:-/tmp/orc-sim-$(id -u)}/jsm-$LSB_JOBID"
}

# jsm_run CMD...: register a step and run one rank per command line (quoted with printf
# %q), each in a session of its own; exit with the highest rank exit code. A TERM to jsrun
# ends jsrun alone, as with the real one: the ranks keep running until `jskill`.
jsm_run() {
    local dir n=$# r=0 cmd p c rc=0 pids=() id
    dir=$(jsm_dir)
    mkdir -p "$dir"
    exec 9>>"$dir/seq"
    flock 9
    id=$(( $(cat "$dir/seq.n" 2>/dev/null || echo 0) + 1 ))
    echo "$id" > "$dir/seq.n"
    echo "Running -1 $n" > "$dir/$id.state"
    flock -u 9
    exec 9>&-
    for cmd in "$@"; do
        JSM_NAMESPACE_RANK=$r PMI_RANK=$r PMI_SIZE=$n \
            setsid bash -c "$(declare -f on_node); on_node \"\$1\" bash -c \"exec \$2\"" _ "${RANK_HOSTS[$r]:-}" "$cmd" &
        pids+=($!)
        r=$((r + 1))
    done
    echo "${pids[*]}" > "$dir/$id.pids"
    trap 'exit 143' TERM INT
    for p in "${pids[@]}"; do
        wait "$p"; c=$?
        [ "$c" -gt "$rc" ] && rc=$c
    done
    read -r status _ _ < "$dir/$id.state"
    if [ "$status" = Killed ]; then
        echo "Killed $rc $n" > "$dir/$id.state"
    else
        echo "Complete $rc $n" > "$dir/$id.state"
    fi
    exit "$rc"
}
