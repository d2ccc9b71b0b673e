//! Refuse TensorFlow graphs that reach outside the server, before TensorFlow parses them
//! (the orc-ai TF backend on TensorFlow calls [`check`]).
//!
//! A frozen GraphDef is a program: operations such as `ReadFile`, `WriteFile`,
//! `ImmutableConst` (maps a file), `Save`/`Restore`, readers, datasets, summaries, debug dumps
//! or RPC would let any client that may store a model read or write the server's files or
//! reach other processes. The bytes are walked here first (protobuf wire format: the graph's
//! nodes and the nodes of its function library's functions, a fixed nesting, linear in the
//! bytes), and a graph holding such an operation is refused, naming it, unless the server
//! allows unsafe operations.
//!
//! ```
//! // A GraphDef with one node (field 1): name "x" (1), op "ReadFile" (2).
//! let graph = [0x0a, 0x0d, 0x0a, 0x01, b'x', 0x12, 0x08, b'R', b'e', b'a', b'd', b'F', b'i', b'l', b'e'];
//! let e = orc_ai_tf_check::check(&graph, false).unwrap_err();
//! assert!(e.contains("x (ReadFile)"));
//! assert_eq!(orc_ai_tf_check::check(&graph, true), Ok(()));
//! ```
#![deny(missing_docs)]

/// Parts of operation type names that read or write files or reach other processes.
pub const UNSAFE: [&str; 19] = [
    "File",
    "Reader",
    "Dataset",
    "Iterator",
    "Save",
    "Restore",
    "Checkpoint",
    "Summary",
    "Debug",
    "PyFunc",
    "Proto",
    "Rpc",
    "Send",
    "Recv",
    "Collective",
    "TPU",
    "ImmutableConst",
    "PrintV2",
    "Remap",
];

/// One protobuf field: number and, for length-delimited ones, the bytes.
struct Field<'a> {
    number: u64,
    bytes: Option<&'a [u8]>,
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn fields(b: &[u8]) -> impl Iterator<Item = Result<Field<'_>, String>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= b.len() {
            return None;
        }
        let mut next = || -> Result<Field<'_>, String> {
            let key = varint(b, &mut at)?;
            let number = key >> 3;
            let bytes = match key & 7 {
                0 => {
                    varint(b, &mut at)?;
                    None
                }
                1 => {
                    at = at
                        .checked_add(8)
                        .filter(|e| *e <= b.len())
                        .ok_or("truncated")?;
                    None
                }
                5 => {
                    at = at
                        .checked_add(4)
                        .filter(|e| *e <= b.len())
                        .ok_or("truncated")?;
                    None
                }
                2 => {
                    let len = usize::try_from(varint(b, &mut at)?).map_err(|_| "too long")?;
                    let end = at
                        .checked_add(len)
                        .filter(|e| *e <= b.len())
                        .ok_or("truncated")?;
                    let s = &b[at..end];
                    at = end;
                    Some(s)
                }
                w => return Err(format!("wire type {w}")),
            };
            Ok(Field { number, bytes })
        };
        let r = next();
        if r.is_err() {
            at = b.len();
        }
        Some(r)
    })
}

/// Call `f` with the name and operation type of every node in `graph` and in its
/// library's functions (a fixed nesting, no recursion on the client's bytes).
fn each_node(graph: &[u8], f: &mut dyn FnMut(&str, &str)) -> Result<(), String> {
    fn node(b: &[u8], f: &mut dyn FnMut(&str, &str)) -> Result<(), String> {
        let (mut name, mut op) = (String::new(), String::new());
        for fl in fields(b) {
            let fl = fl?;
            match (fl.number, fl.bytes) {
                (1, Some(s)) => name = String::from_utf8_lossy(s).into_owned(),
                (2, Some(s)) => op = String::from_utf8_lossy(s).into_owned(),
                _ => {}
            }
        }
        f(&name, &op);
        Ok(())
    }
    // GraphDef: 1 node, 2 library; FunctionDefLibrary: 1 function; FunctionDef: 3 node_def.
    for fl in fields(graph) {
        let fl = fl?;
        match (fl.number, fl.bytes) {
            (1, Some(n)) => node(n, f)?,
            (2, Some(lib)) => {
                for func in fields(lib) {
                    if let Field {
                        number: 1,
                        bytes: Some(func),
                    } = func?
                    {
                        for part in fields(func) {
                            if let Field {
                                number: 3,
                                bytes: Some(n),
                            } = part?
                            {
                                node(n, f)?;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuse a graph that cannot be read or holds an unsafe operation (unless `allow_unsafe`).
pub fn check(graph: &[u8], allow_unsafe: bool) -> Result<(), String> {
    let mut found = None;
    each_node(graph, &mut |name, op| {
        if found.is_none() && UNSAFE.iter().any(|u| op.contains(u)) {
            found = Some(format!("{name} ({op})"));
        }
    })
    .map_err(|e| format!("Invalid GraphDef: {e}"))?;
    match found {
        Some(node) if !allow_unsafe => Err(format!(
            "the TF graph holds operation {node}, which reads or writes files or reaches outside \
             the server; refused (module argument ALLOW_UNSAFE_OPS yes accepts such graphs)"
        )),
        _ => Ok(()),
    }
}

/// The body of the `tf_check` fuzz target (`scripts/fuzz`), here so that `cargo test`
/// replays its corpus and every crash it found.
pub mod fuzzing {
    /// Any bytes: checked without panicking, and a refusal always says why.
    pub fn check(data: &[u8]) {
        for allow in [false, true] {
            if let Err(e) = super::check(data, allow) {
                assert!(!e.is_empty());
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn every_corpus_input_and_every_crash_found_is_replayed() {
            let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/../orc-ai/fuzz");
            let mut n = 0;
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(format!("{fuzz}/{dir}/tf_check")) else {
                    continue;
                };
                for f in entries.flatten() {
                    let data = std::fs::read(f.path()).unwrap();
                    assert!(
                        std::panic::catch_unwind(|| super::check(&data)).is_ok(),
                        "{}",
                        f.path().display()
                    );
                    n += 1;
                }
            }
            assert!(n > 0, "no seed corpus for tf_check");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8];
        out.push(u8::try_from(bytes.len()).unwrap());
        out.extend_from_slice(bytes);
        out
    }

    fn node(name: &str, op: &str) -> Vec<u8> {
        [field(1, name.as_bytes()), field(2, op.as_bytes())].concat()
    }

    #[test]
    fn safe_graphs_pass_and_file_operations_are_refused() {
        let safe = [
            field(1, &node("x", "Placeholder")),
            field(1, &node("y", "MatMul")),
        ]
        .concat();
        assert_eq!(check(&safe, false), Ok(()));
        let reads = [safe.clone(), field(1, &node("steal", "ReadFile"))].concat();
        let e = check(&reads, false).unwrap_err();
        assert!(e.contains("steal (ReadFile)"), "{e}");
        assert_eq!(check(&reads, true), Ok(()));
        // Hidden in a function of the graph's library.
        let function = field(3, &node("w", "WriteFile"));
        let library = field(1, &function);
        let hidden = [safe, field(2, &library)].concat();
        assert!(check(&hidden, false).unwrap_err().contains("w (WriteFile)"));
        for op in [
            "SaveV2",
            "RestoreV2",
            "TFRecordDataset",
            "ImmutableConst",
            "PrintV2",
            "_Recv",
        ] {
            let g = field(1, &node("n", op));
            assert!(check(&g, false).is_err(), "{op} passed");
        }
    }

    #[test]
    fn graphs_written_by_tensorflow_are_read_whole() {
        // Frozen by TensorFlow 2.21 (the fuzz seeds): a while loop whose condition and body
        // are functions of the library, and a graph reading /etc/hostname.
        let seeds = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../orc-ai/fuzz/corpus/tf_check"
        );
        let read = |name: &str| std::fs::read(format!("{seeds}/{name}")).unwrap();
        let mut ops = Vec::new();
        each_node(&read("while_loop"), &mut |_, op| ops.push(op.to_string())).unwrap();
        assert!(ops.contains(&"StatelessWhile".to_string()), "{ops:?}");
        assert!(
            ops.contains(&"Less".to_string()),
            "loop condition not seen: {ops:?}"
        );
        assert_eq!(check(&read("while_loop"), false), Ok(()));
        let e = check(&read("read_file"), false).unwrap_err();
        assert!(e.contains("contents (ReadFile)"), "{e}");
    }

    #[test]
    fn damaged_bytes_get_an_error() {
        let g = field(1, &node("x", "Placeholder"));
        for cut in 1..g.len() {
            assert!(check(&g[..cut], false).is_err(), "cut at {cut}");
        }
        assert!(
            check(
                &[
                    0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
                ],
                false
            )
            .is_err()
        );
        assert!(check(&[0x0f], false).is_err()); // wire type 7
        assert_eq!(check(&[], false), Ok(())); // an empty graph: TensorFlow decides
    }
}
