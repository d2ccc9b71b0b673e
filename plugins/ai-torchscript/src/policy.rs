//! Which TorchScript operations a client may store: by default none that reads or writes
//! files on the server, talks to the network, or starts work outside the request. A model
//! or script using one is refused when stored, the operation named; the module argument
//! `TORCH_ALLOW_UNSAFE_OPS yes` accepts them for sites that trust every client.
//!
//! The list was made from every operator registered in Debian's libtorch 1.13 (1891 of
//! them, `torch::jit::getAllOperators`): `aten::from_file` (reads a file), `aten::save`
//! (writes one), the `c10d` collectives (network), `prim::fork` / `aten::wait` (tasks
//! on other threads, beyond the request's interrupt), any RPC operation, and any use of a
//! C++ class (`torch.classes.*`: `FileStore`, `TCPStore`, process groups) outside the
//! compute-only namespaces of [`COMPUTE_CLASS_NAMESPACES`] (quantized models use them).

/// Operations refused by name.
pub const UNSAFE_OPS: [&str; 4] = ["aten::from_file", "aten::save", "prim::fork", "aten::wait"];

/// Namespaces refused as a whole.
pub const UNSAFE_NAMESPACES: [&str; 5] = [
    "c10d::",
    "dist_c10d::",
    "rpc::",
    "dist_rpc::",
    "dist_autograd::",
];

/// Namespaces of C++ classes that only compute (quantized models hold packed weights in
/// them); classes of any other namespace are refused.
pub const COMPUTE_CLASS_NAMESPACES: [&str; 4] = ["quantized", "xnnpack", "mkldnn", "sparse"];

/// Whether a `torch.classes` namespace holds compute-only classes.
pub fn compute_only_classes(namespace: &str) -> bool {
    COMPUTE_CLASS_NAMESPACES.contains(&namespace)
}

/// Why `name` (a qualified operation, or `class <qualified name>`) is unsafe, if it is.
pub fn unsafe_reason(name: &str) -> Option<&'static str> {
    if let Some(class) = name.strip_prefix("class ") {
        let ns = class
            .strip_prefix("__torch__.torch.classes.")
            .and_then(|rest| rest.split('.').next())
            .unwrap_or_default();
        if compute_only_classes(ns) {
            return None;
        }
        return Some("uses a C++ class, which can reach files, the network or other processes");
    }
    match name {
        "aten::from_file" => Some("reads a file on the server"),
        "aten::save" => Some("writes a file on the server"),
        "prim::fork" | "aten::wait" => Some("starts work outside the request"),
        _ if UNSAFE_NAMESPACES.iter().any(|ns| name.starts_with(ns)) => {
            Some("talks to other processes over the network")
        }
        _ if name.contains("rpc") => Some("talks to other processes over the network"),
        _ => None,
    }
}

/// The refusal message for an unsafe operation.
pub fn refusal(what: &str) -> String {
    format!(
        "the TorchScript uses {what}, which orc-ai refuses: clients may not read or write files, use the network or start work outside a request on the server (module argument TORCH_ALLOW_UNSAFE_OPS yes allows it)"
    )
}

/// Check every operation a model or script uses.
pub fn check<'a>(
    names: impl IntoIterator<Item = &'a str>,
    allow_unsafe: bool,
) -> Result<(), String> {
    if allow_unsafe {
        return Ok(());
    }
    for n in names {
        if let Some(why) = unsafe_reason(n) {
            return Err(refusal(&format!("{n} ({why})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list() {
        for bad in UNSAFE_OPS {
            assert!(check([bad], false).unwrap_err().contains(bad));
        }
        assert!(check(["c10d::barrier"], false).is_err());
        assert!(check(["aten::rpc_async"], false).is_err());
        assert!(check(["class __torch__.torch.classes.dist_c10d.FileStore"], false).is_err());
        assert!(
            check(
                ["class __torch__.torch.classes.quantized.LinearPackedParamsBase"],
                false
            )
            .is_ok()
        );
        assert!(
            check(
                [
                    "aten::add",
                    "prim::Loop",
                    "prim::Print",
                    "orc::check_interrupt"
                ],
                false
            )
            .is_ok()
        );
        assert!(check(["aten::save"], true).is_ok());
    }
}
