# Sourced by the simulator's parallel launchers (mpiexec, aprun).

. "$(dirname "${BASH_SOURCE[0]}")/nodes.sh"

# run_programs CMD...: MPMD; one rank per argument, each a shell command line (quoted with
# printf %q), rank variables set, SIGTERM/SIGINT forwarded, highest exit code returned.
# Rank r runs on node ${RANK_HOSTS[r]} when the caller set it (see nodes.sh).
run_programs() {
    local n=$# pids=() p c rc=0 r=0 cmd
    trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM INT
    for cmd in "$@"; do
        PALS_RANKID=$r ALPS_APP_PE=$r JSM_NAMESPACE_RANK=$r PMI_RANK=$r PMI_SIZE=$n \
            on_node "${RANK_HOSTS[$r]:-}" bash -c "exec $cmd" &
        pids+=($!)
        r=$((r + 1))
    done
    for p in "${pids[@]}"; do
        while true; do
            wait "$p"; c=$?
            # A wait cut short by a trapped signal returns >128 while the rank still runs.
            kill -0 "$p" 2>/dev/null || break
        done
        [ "$c" -gt "$rc" ] && rc=$c
    done
    exit "$rc"
}
