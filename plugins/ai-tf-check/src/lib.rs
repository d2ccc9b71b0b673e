//! Refuse TensorFlow graphs that reach outside the server, before TensorFlow parses them
//! (the orc-ai TF backend on TensorFlow calls [`check`]).
//!
//! A frozen GraphDef is a program: operations such as `ReadFile`, `WriteFile`,
//! `ImmutableConst` (maps a file), `Save`/`Restore`, readers, datasets, summaries, debug dumps
//! or RPC would let any client that may store a model read or write the server's files or
//! reach other processes. The bytes are walked here first (protobuf wire format: the graph's
//! nodes and the nodes of its function library's functions, a fixed nesting, linear in the
//! bytes), and a graph holding such an operation is refused, naming it, unless the server
//! allows unsafe operations. So are graphs TensorFlow would recurse on until the process
//! dies: functional loops (`While`, `StatelessWhile`, `For`; graphs frozen with lowered
//! control flow loop without recursion) and functions that call themselves.
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
                wire @ (1 | 5) => {
                    // Fixed 64-bit (1) or 32-bit (5) values.
                    let size = if wire == 1 { 8 } else { 4 };
                    at = at
                        .checked_add(size)
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

/// One node: its name, its operation, and the functions its attributes name.
struct Node {
    name: String,
    op: String,
    calls: Vec<String>,
}

/// What the walk reads of a graph: the main graph's nodes, and each function of its library
/// with its nodes.
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    functions: Vec<(String, Vec<Node>)>,
}

/// Deepest nesting of function-valued attributes followed (a function given a function...).
const MAX_ATTR_DEPTH: usize = 8;

/// Call `f` with each length-delimited field numbered `number` in the message `b`, in order.
fn each(
    b: &[u8],
    number: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    for fl in fields(b) {
        if let Field {
            number: n,
            bytes: Some(s),
        } = fl?
            && n == number
        {
            f(s)?;
        }
    }
    Ok(())
}

fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// The function names an `AttrValue` holds (`func` 10, `list` 1 -> `func` 9), nested ones
/// (in a `NameAttrList`'s `attr` 2) down to [`MAX_ATTR_DEPTH`].
fn attr_funcs(value: &[u8], depth: usize, out: &mut Vec<String>) -> Result<(), String> {
    if depth > MAX_ATTR_DEPTH {
        return Err("function attributes nested too deep".into());
    }
    // NameAttrList: name 1, attr 2 (map entries: key 1, value 2).
    let name_attr_list = |b: &[u8], out: &mut Vec<String>| {
        each(b, 1, |n| {
            out.push(text(n));
            Ok(())
        })?;
        each(b, 2, |entry| {
            each(entry, 2, |v| attr_funcs(v, depth + 1, out))
        })
    };
    each(value, 10, |f| name_attr_list(f, out))?;
    each(value, 1, |list| each(list, 9, |f| name_attr_list(f, out)))
}

/// A NodeDef: name 1, op 2, attr 5 (map entries: key 1, value 2).
fn node(b: &[u8]) -> Result<Node, String> {
    let mut n = Node {
        name: String::new(),
        op: String::new(),
        calls: Vec::new(),
    };
    each(b, 1, |s| {
        n.name = text(s);
        Ok(())
    })?;
    each(b, 2, |s| {
        n.op = text(s);
        Ok(())
    })?;
    each(b, 5, |entry| {
        each(entry, 2, |v| attr_funcs(v, 0, &mut n.calls))
    })?;
    Ok(n)
}

/// Read `graph`: GraphDef node 1, library 2; FunctionDefLibrary function 1; FunctionDef
/// signature 1 (OpDef name 1), node_def 3. A fixed nesting, no recursion on the client's
/// bytes beyond [`MAX_ATTR_DEPTH`].
fn read(graph: &[u8]) -> Result<Graph, String> {
    let mut g = Graph::default();
    each(graph, 1, |n| {
        g.nodes.push(node(n)?);
        Ok(())
    })?;
    each(graph, 2, |lib| {
        each(lib, 1, |func| {
            let (mut name, mut nodes) = (String::new(), Vec::new());
            each(func, 1, |signature| {
                each(signature, 1, |n| {
                    name = text(n);
                    Ok(())
                })
            })?;
            each(func, 3, |n| {
                nodes.push(node(n)?);
                Ok(())
            })?;
            g.functions.push((name, nodes));
            Ok(())
        })
    })?;
    Ok(g)
}

/// Call `f` with the name and operation type of every node in `graph` and in its
/// library's functions.
#[cfg(test)]
fn each_node(graph: &[u8], f: &mut dyn FnMut(&str, &str)) -> Result<(), String> {
    let g = read(graph)?;
    for n in g
        .nodes
        .iter()
        .chain(g.functions.iter().flat_map(|(_, n)| n))
    {
        f(&n.name, &n.op);
    }
    Ok(())
}

/// Functional loops: TensorFlow runs their body by recursion, and a loop of about 100 000
/// iterations (or one that never ends) overflows the stack and kills the process. Graphs
/// frozen with lowered control flow (`convert_variables_to_constants_v2`'s default) hold
/// `Enter`/`Exit`/`NextIteration` loops instead, which TensorFlow runs without recursion.
pub const FUNCTIONAL_LOOPS: [&str; 3] = ["While", "StatelessWhile", "For"];

/// A function of the library that calls itself, directly or through others (TensorFlow
/// recurses and kills the process), if any.
fn recursive_function(g: &Graph) -> Option<String> {
    let index = |name: &str| g.functions.iter().position(|(n, _)| n == name);
    let callees: Vec<Vec<usize>> = g
        .functions
        .iter()
        .map(|(_, nodes)| {
            nodes
                .iter()
                .flat_map(|n| std::iter::once(&n.op).chain(&n.calls))
                .filter_map(|name| index(name))
                .collect()
        })
        .collect();
    // Depth-first search for a cycle, with an explicit stack (0 new, 1 open, 2 done).
    let mut state = vec![0u8; callees.len()];
    for start in 0..callees.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((f, next)) = stack.last_mut() {
            if let Some(&c) = callees[*f].get(*next) {
                *next += 1;
                match state[c] {
                    1 => return Some(g.functions[c].0.clone()),
                    0 => {
                        state[c] = 1;
                        stack.push((c, 0));
                    }
                    _ => {}
                }
            } else {
                state[*f] = 2;
                stack.pop();
            }
        }
    }
    None
}

/// Refuse a graph that cannot be read or holds what reaches outside the server or crashes
/// TensorFlow (unless `allow_unsafe`): operations that read or write files ([`UNSAFE`]),
/// functional loops ([`FUNCTIONAL_LOOPS`]) and recursive functions.
pub fn check(graph: &[u8], allow_unsafe: bool) -> Result<(), String> {
    let g = read(graph).map_err(|e| format!("Invalid GraphDef: {e}"))?;
    if allow_unsafe {
        return Ok(());
    }
    let all = || {
        g.nodes
            .iter()
            .chain(g.functions.iter().flat_map(|(_, n)| n))
    };
    let allow = "module argument ALLOW_UNSAFE_OPS yes accepts such graphs";
    if let Some(n) = all().find(|n| UNSAFE.iter().any(|u| n.op.contains(u))) {
        return Err(format!(
            "the TF graph holds operation {} ({}), which reads or writes files or reaches \
             outside the server; refused ({allow})",
            n.name, n.op
        ));
    }
    if let Some(n) = all().find(|n| FUNCTIONAL_LOOPS.contains(&n.op.as_str())) {
        return Err(format!(
            "the TF graph holds the functional loop {} ({}), which TensorFlow runs by \
             recursion: a long loop kills the server; freeze the graph with lowered control \
             flow (convert_variables_to_constants_v2's default) ({allow})",
            n.name, n.op
        ));
    }
    if let Some(f) = recursive_function(&g) {
        return Err(format!(
            "the TF graph's function {f} calls itself, which kills TensorFlow; refused ({allow})"
        ));
    }
    Ok(())
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
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push((len & 0x7f) as u8 | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
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
        // Its loop is functional (StatelessWhile): refused, saying how to freeze instead.
        let e = check(&read("while_loop"), false).unwrap_err();
        assert!(
            e.contains("(StatelessWhile)") && e.contains("lowered control flow"),
            "{e}"
        );
        assert_eq!(check(&read("while_loop"), true), Ok(()));
        // A function that calls itself (PartitionedCall f inside f).
        let e = check(&read("recursive"), false).unwrap_err();
        assert!(e.contains("function f calls itself"), "{e}");
        let e = check(&read("read_file"), false).unwrap_err();
        assert!(e.contains("contents (ReadFile)"), "{e}");
    }

    /// A FunctionDef named `name` whose body is `nodes`.
    fn function(name: &str, nodes: &[Vec<u8>]) -> Vec<u8> {
        let signature = field(1, name.as_bytes()); // OpDef.name
        let mut f = field(1, &signature);
        for n in nodes {
            f.extend(field(3, n));
        }
        f
    }

    /// A node calling `callee` through a `func` attribute.
    fn call(name: &str, callee: &str) -> Vec<u8> {
        let func = field(10, &field(1, callee.as_bytes())); // AttrValue.func.name
        let entry = [field(1, b"f"), field(2, &func)].concat();
        [node(name, "PartitionedCall"), field(5, &entry)].concat()
    }

    #[test]
    fn recursion_through_functions_is_refused_and_plain_calls_pass() {
        let library =
            |fs: &[Vec<u8>]| field(2, &fs.iter().flat_map(|f| field(1, f)).collect::<Vec<u8>>());
        let main = field(1, &call("out", "a"));
        // a -> b -> c: fine.
        let chain = [
            main.clone(),
            library(&[
                function("a", &[call("x", "b")]),
                function("b", &[call("y", "c")]),
                function("c", &[node("z", "Identity")]),
            ]),
        ]
        .concat();
        assert_eq!(check(&chain, false), Ok(()));
        // a -> b -> a, through a list of functions, and a function called as an op.
        let list = field(1, &field(9, &field(1, b"a"))); // AttrValue.list.func[0].name
        let through_list = [
            field(1, b"y"),
            field(2, b"Case"),
            field(5, &[field(1, b"branches"), field(2, &list)].concat()),
        ]
        .concat();
        for b_body in [call("y", "a"), through_list, node("y", "a")] {
            let cycle = [
                main.clone(),
                library(&[function("a", &[call("x", "b")]), function("b", &[b_body])]),
            ]
            .concat();
            let e = check(&cycle, false).unwrap_err();
            assert!(e.contains("calls itself"), "{e}");
            assert_eq!(check(&cycle, true), Ok(()));
        }
        // Functions given functions, nested deeper than the bound: an error, not a stack.
        let mut value = field(10, &field(1, b"a"));
        for _ in 0..20 {
            let entry = [field(1, b"k"), field(2, &value)].concat();
            value = field(10, &[field(1, b"g"), field(2, &entry)].concat());
        }
        let deep = field(
            1,
            &[
                field(1, b"n"),
                field(2, b"Op"),
                field(5, &[field(1, b"f"), field(2, &value)].concat()),
            ]
            .concat(),
        );
        assert!(check(&deep, false).unwrap_err().contains("nested too deep"));
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
