# Sourced by the scripts: one persistent target directory outside the clone, reused by
# every checkout on this machine (CI clones fresh each time).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/orc/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
