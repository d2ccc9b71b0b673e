# Sourced by the simulator's parallel launchers: where a rank runs.
#
# On orc's multi-node test bed, $ORC_SIM_NODES names the nodes and $ORC_SIM_ON_NODE is a
# command (words split at spaces, e.g. `scripts/multinode on`) that runs a command on one
# (`$ORC_SIM_ON_NODE NODE CMD...`); without them every rank runs here, on the one-node
# "cluster".

# RANK_HOSTS[r]: the node rank r runs on (empty: here). Set by the launcher.
RANK_HOSTS=()

# on_node NODE CMD...: run CMD on NODE (here when NODE is empty or no test bed is set),
# replacing this process (the rank keeps its pid for signals).
on_node() {
    local node=$1
    shift
    if [ -n "$node" ] && [ -n "${ORC_SIM_ON_NODE:-}" ]; then
        # shellcheck disable=SC2086 # a command line of words
        exec $ORC_SIM_ON_NODE "$node" "$@"
    fi
    exec "$@"
}

# node_of_nid NID: the test-bed node of a Cray node id (the first nid, 3824, is the first
# node); empty without a test bed.
node_of_nid() {
    local nodes i
    [ -n "${ORC_SIM_NODES:-}" ] || return 0
    IFS=, read -ra nodes <<< "$ORC_SIM_NODES"
    i=$(( $1 - 3824 ))
    [ "$i" -ge 0 ] && [ "$i" -lt ${#nodes[@]} ] && echo "${nodes[$i]}"
}
