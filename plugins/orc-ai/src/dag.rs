//! `AI.DAGEXECUTE` / `AI.DAGEXECUTE_RO`: several tensor, model and script operations run
//! as one request, on DAG-local tensor names, with only the PERSIST names written back.
//!
//! Parsing happens on the main thread: LOAD takes keyspace tensors in (shared, not
//! copied), `AI.TENSORSET` operations run at once, models and scripts are looked up, and
//! every operation's inputs must be available from LOAD or an earlier operation. The rest
//! runs on a worker. The work done here is linear in the request and bounded by
//! `MAX_DAG_SIZE` (operations plus LOAD and PERSIST keys).

use std::collections::{HashMap, HashSet};

use crate::{
    args::{Reply, is, take, text, uint},
    config::Limits,
    execute::timeout_value,
    tensor::{self, GetFormat, Tensor},
};

/// One operation of a DAG over models `M` and scripts `S`.
pub enum Op<M, S> {
    /// `AI.TENSORSET` (already applied at parse time).
    Set,
    /// `AI.TENSORGET name [format]`.
    Get {
        /// DAG-local name.
        name: Vec<u8>,
        /// Reply format.
        format: GetFormat,
    },
    /// `AI.MODELEXECUTE`.
    Model {
        /// The model.
        model: M,
        /// Input names.
        inputs: Vec<Vec<u8>>,
        /// Output names.
        outputs: Vec<Vec<u8>>,
    },
    /// `AI.SCRIPTEXECUTE`.
    Script {
        /// The script.
        script: S,
        /// The function.
        function: String,
        /// KEYS.
        keys: Vec<String>,
        /// ARGS.
        args: Vec<String>,
        /// Input names.
        inputs: Vec<Vec<u8>>,
        /// Output names.
        outputs: Vec<Vec<u8>>,
    },
}

/// A parsed DAG, ready to run.
pub struct Dag<M, S> {
    /// DAG-local tensors: LOADed ones and those set by `AI.TENSORSET` operations.
    pub tensors: HashMap<Vec<u8>, Tensor>,
    /// The operations, in order.
    pub ops: Vec<Op<M, S>>,
    /// Names to write to the keyspace when every operation succeeded.
    pub persist: Vec<Vec<u8>>,
    /// Longest wait for the answer, in ms.
    pub timeout_ms: Option<u64>,
    /// The device queue to run on.
    pub device: String,
}

/// How the parser reaches the keyspace (the command handler provides it).
pub trait Keyspace {
    /// What a model lookup gives.
    type Model;
    /// What a script lookup gives.
    type Script;
    /// A tensor by key (errors as `AI.TENSORGET`).
    fn tensor(&self, key: &[u8]) -> Result<Tensor, Reply>;
    /// A model by key, with its device.
    fn model(&self, key: &[u8]) -> Result<(Self::Model, String), Reply>;
    /// A script by key, with its device.
    fn script(&self, key: &[u8]) -> Result<(Self::Script, String), Reply>;
}

fn counted<'a>(
    a: &'a [&'a [u8]],
    i: usize,
    missing: &str,
    bad: &str,
    mismatch: &str,
) -> Result<(&'a [&'a [u8]], usize), Reply> {
    let n = a.get(i + 1).ok_or_else(|| Reply::new(missing))?;
    let n = uint(n).ok_or_else(|| Reply::new(bad))?;
    let list = take(a, i + 2, n)
        .filter(|l| !l.contains(&b"|>".as_slice()))
        .ok_or_else(|| Reply::new(mismatch))?;
    Ok((list, i + 2 + list.len()))
}

fn too_large(size: usize, limits: &Limits) -> Reply {
    Reply(format!(
        "ERR DAG is too large: {size} operations and LOAD/PERSIST keys (at most {}; module argument MAX_DAG_SIZE)",
        limits.max_dag_size
    ))
}

/// Parse `AI.DAGEXECUTE[_RO]` arguments (after the command name).
pub fn parse<K: Keyspace>(
    a: &[&[u8]],
    read_only: bool,
    ks: &K,
    limits: &Limits,
) -> Result<Dag<K::Model, K::Script>, Reply> {
    let cmd = if read_only {
        "AI.DAGEXECUTE_RO"
    } else {
        "AI.DAGEXECUTE"
    };
    if a.len() < 5 {
        return Err(Reply(format!("ERR missing arguments for '{cmd}' command")));
    }
    let max = usize::try_from(limits.max_dag_size).unwrap_or(usize::MAX);
    let op_count = a.iter().filter(|x| **x == b"|>").count();
    if op_count > max {
        return Err(too_large(op_count, limits));
    }
    let mut size = op_count;
    let mut dag = Dag {
        tensors: HashMap::new(),
        ops: Vec::new(),
        persist: Vec::new(),
        timeout_ms: None,
        device: "CPU".into(),
    };
    let (mut load, mut persist, mut routing, mut timeout) = (false, false, false, false);
    let mut i = 0;
    while i < a.len() && a[i] != b"|>" {
        let kw = a[i];
        if is(kw, "LOAD") && !load {
            let (keys, next) = counted(
                a,
                i,
                "ERR missing arguments after LOAD keyword in DAG command",
                "ERR invalid or negative value found in number of keys to LOAD",
                "ERR number of keys to LOAD into DAG does not match the number of given arguments",
            )?;
            size += keys.len();
            if size > max {
                return Err(too_large(size, limits));
            }
            for k in keys {
                if !dag.tensors.contains_key(*k) {
                    dag.tensors.insert(k.to_vec(), ks.tensor(k)?);
                }
            }
            load = true;
            i = next;
        } else if is(kw, "PERSIST") && !persist {
            if read_only {
                return Err(Reply::new(
                    "ERR PERSIST cannot be specified in a read-only DAG",
                ));
            }
            let (keys, next) = counted(
                a,
                i,
                "ERR missing arguments after PERSIST keyword in DAG command",
                "ERR invalid or negative value found in number of keys to PERSIST",
                "ERR number of keys to PERSIST after DAG execution does not match the number of given arguments",
            )?;
            size += keys.len();
            if size > max {
                return Err(too_large(size, limits));
            }
            let mut seen = HashSet::with_capacity(keys.len());
            for k in keys {
                if !seen.insert(*k) {
                    return Err(Reply::new("ERR PERSIST keys must be unique"));
                }
                dag.persist.push(k.to_vec());
            }
            persist = true;
            i = next;
        } else if is(kw, "ROUTING") && !routing {
            a.get(i + 1)
                .filter(|r| *r != b"|>")
                .ok_or_else(|| Reply::new("ERR Missing ROUTING value"))?;
            routing = true;
            i += 2;
        } else if is(kw, "TIMEOUT") && !timeout {
            let v = a
                .get(i + 1)
                .ok_or_else(|| Reply::new("ERR No value provided for TIMEOUT"))?;
            dag.timeout_ms = Some(timeout_value(v)?);
            timeout = true;
            i += 2;
        } else {
            return Err(Reply(format!(
                "ERR Invalid DAG command. Unexpected argument:  {}",
                text(kw)
            )));
        }
    }
    if !(load || persist || routing) {
        return Err(Reply::new(
            "ERR AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords",
        ));
    }
    let rest = a.get(i..).unwrap_or_default();
    let ops: Vec<&[&[u8]]> = rest
        .split(|x| *x == b"|>")
        .filter(|o| !o.is_empty())
        .collect();
    if ops.is_empty() {
        return Err(Reply::new("ERR DAG is empty"));
    }
    let mut available: HashSet<Vec<u8>> = dag.tensors.keys().cloned().collect();
    let need = |names: &[Vec<u8>], available: &HashSet<Vec<u8>>| {
        if names.iter().all(|n| available.contains(n)) {
            Ok(())
        } else {
            Err(Reply::new("ERR INPUT key cannot be found in DAG"))
        }
    };
    let mut device = None;
    for op in ops {
        let name = op[0];
        if is(name, "AI.TENSORSET") {
            if op.len() < 3 {
                return Err(Reply::new(
                    "wrong number of arguments for 'AI.TENSORSET' command",
                ));
            }
            let t = Tensor::from_args(&op[2..], limits).map_err(|e| Reply(e.0))?;
            dag.tensors.insert(op[1].to_vec(), t);
            available.insert(op[1].to_vec());
            dag.ops.push(Op::Set);
        } else if is(name, "AI.TENSORGET") {
            if !(2..=4).contains(&op.len()) {
                return Err(Reply::new(
                    "wrong number of arguments for 'AI.TENSORGET' command",
                ));
            }
            let format = tensor::parse_get_format(&op[2..]).map_err(|e| Reply(e.0))?;
            dag.ops.push(Op::Get {
                name: op[1].to_vec(),
                format,
            });
        } else if is(name, "AI.MODELEXECUTE") {
            let key = op.get(1).ok_or_else(|| {
                Reply::new("ERR wrong number of arguments for 'AI.MODELEXECUTE' command")
            })?;
            let (model, dev) = ks.model(key)?;
            let (inputs, outputs) = io_lists(&op[2..], "AI.MODELEXECUTE")?;
            need(&inputs, &available)?;
            available.extend(outputs.iter().cloned());
            device.get_or_insert(dev);
            dag.ops.push(Op::Model {
                model,
                inputs,
                outputs,
            });
        } else if is(name, "AI.SCRIPTEXECUTE") {
            if read_only {
                return Err(Reply::new(
                    "ERR AI.SCRIPTEXECUTE command cannot be specified in a read-only DAG",
                ));
            }
            let (key, function) = match op {
                [_, k, f, ..] => (*k, text(f)),
                _ => {
                    return Err(Reply::new(
                        "ERR wrong number of arguments for 'AI.SCRIPTEXECUTE' command",
                    ));
                }
            };
            let (script, dev) = ks.script(key)?;
            let (keys, inputs, args, outputs) = script_lists(&op[3..])?;
            need(&inputs, &available)?;
            available.extend(outputs.iter().cloned());
            device.get_or_insert(dev);
            dag.ops.push(Op::Script {
                script,
                function,
                keys,
                args,
                inputs,
                outputs,
            });
        } else if is(name, "AI.MODELRUN") || is(name, "AI.SCRIPTRUN") {
            return Err(Reply(format!(
                "Deprecated {} cannot be used in AI.DAGEXECUTE command",
                text(name).to_ascii_uppercase()
            )));
        } else {
            return Err(Reply::new("Unsupported command within DAG"));
        }
    }
    if dag.persist.iter().any(|p| !available.contains(p)) {
        return Err(Reply::new("ERR PERSIST key cannot be found in DAG"));
    }
    if let Some(d) = device {
        dag.device = d;
    }
    Ok(dag)
}

type Names = Vec<Vec<u8>>;

fn io_lists(a: &[&[u8]], cmd: &str) -> Result<(Names, Names), Reply> {
    if a.iter().any(|x| is(x, "TIMEOUT")) {
        return Err(Reply::new("ERR TIMEOUT not allowed within a DAG command"));
    }
    let list = |kw: &str| -> Result<Vec<Vec<u8>>, Reply> {
        let i = a
            .iter()
            .position(|x| is(x, kw))
            .ok_or_else(|| Reply(format!("ERR {kw} not specified")))?;
        let n = a
            .get(i + 1)
            .and_then(|x| uint(x))
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                Reply(format!(
                    "ERR Invalid argument for {}_count",
                    if kw == "INPUTS" { "input" } else { "output" }
                ))
            })?;
        let items = take(a, i + 2, n).ok_or_else(|| {
            Reply(format!(
                "ERR number of {} keys to {cmd} command does not match the number of given arguments",
                kw.to_ascii_lowercase().trim_end_matches('s')
            ))
        })?;
        Ok(items.iter().map(|x| x.to_vec()).collect())
    };
    Ok((list("INPUTS")?, list("OUTPUTS")?))
}

type ScriptLists = (Vec<String>, Vec<Vec<u8>>, Vec<String>, Vec<Vec<u8>>);

fn script_lists(a: &[&[u8]]) -> Result<ScriptLists, Reply> {
    if a.iter().any(|x| is(x, "TIMEOUT")) {
        return Err(Reply::new("ERR TIMEOUT not allowed within a DAG command"));
    }
    let mut lists: [Vec<Vec<u8>>; 4] = Default::default();
    let names = ["KEYS", "INPUTS", "ARGS", "OUTPUTS"];
    let mut i = 0;
    while i < a.len() {
        let which = names.iter().position(|n| is(a[i], n)).ok_or_else(|| {
            Reply(format!(
                "ERR Invalid AI.SCRIPTEXECUTE command. Unexpected argument: {}",
                text(a[i])
            ))
        })?;
        let bad = || Reply::new("ERR Invalid arguments provided to AI.SCRIPTEXECUTE");
        let n = a.get(i + 1).and_then(|x| uint(x)).ok_or_else(bad)?;
        let items = take(a, i + 2, n).ok_or_else(bad)?;
        lists[which] = items.iter().map(|x| x.to_vec()).collect();
        i += 2 + items.len();
    }
    let [keys, inputs, args, outputs] = lists;
    let s = |v: Vec<Vec<u8>>| {
        v.into_iter()
            .map(|x| String::from_utf8_lossy(&x).into_owned())
            .collect()
    };
    Ok((s(keys), inputs, s(args), outputs))
}

/// Positions of the keys of a DAG command (command name at 0), for cluster routing.
/// Linear in the arguments whatever the counts say.
pub fn key_positions(a: &[&[u8]]) -> Vec<usize> {
    let mut pos = Vec::new();
    let mut i = 1;
    while i < a.len() && a[i] != b"|>" {
        if is(a[i], "LOAD") || is(a[i], "PERSIST") {
            let n = a.get(i + 1).and_then(|x| uint(x)).unwrap_or(0);
            let start = i.saturating_add(2).min(a.len());
            let end = start
                .saturating_add(usize::try_from(n).unwrap_or(usize::MAX))
                .min(a.len());
            let list_end = (start..end).find(|p| a[*p] == b"|>").unwrap_or(end);
            pos.extend(start..list_end);
            i = list_end;
        } else if is(a[i], "ROUTING") {
            if i + 1 < a.len() {
                pos.push(i + 1);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    for j in i..a.len() {
        if (is(a[j], "AI.MODELEXECUTE") || is(a[j], "AI.SCRIPTEXECUTE"))
            && j > 0
            && a[j - 1] == b"|>"
            && j + 1 < a.len()
        {
            pos.push(j + 1);
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fuzzing::Keys as Fake;

    fn sp(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    fn parse_str(s: &str, limits: &Limits) -> Result<Dag<(), ()>, Reply> {
        parse(&sp(s), false, &Fake, limits)
    }

    #[test]
    fn a_dag_with_every_kind_of_operation() {
        let d = parse_str(
            "LOAD 2 a b PERSIST 1 y TIMEOUT 5 |> AI.TENSORSET t FLOAT 1 VALUES 2 |> AI.MODELEXECUTE m INPUTS 2 a t OUTPUTS 1 x |> AI.SCRIPTEXECUTE s f INPUTS 1 x OUTPUTS 1 y |> AI.TENSORGET y VALUES",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(d.ops.len(), 4);
        assert_eq!(d.device, "CPU");
        assert_eq!(d.timeout_ms, Some(5));
        assert_eq!(d.persist, [b"y".to_vec()]);
    }

    #[test]
    fn counts_and_sizes_are_bounded() {
        let l = Limits::default();
        assert_eq!(
            parse_str("LOAD 18446744073709551614 a |> AI.TENSORGET a", &l)
                .err()
                .unwrap()
                .0,
            "ERR number of keys to LOAD into DAG does not match the number of given arguments"
        );
        let small = Limits {
            max_dag_size: 3,
            ..Limits::default()
        };
        let e = parse_str("LOAD 3 a a a |> AI.TENSORGET a", &small)
            .err()
            .unwrap();
        assert!(e.0.contains("MAX_DAG_SIZE"), "{e}");
        let e = parse_str(
            "ROUTING a |> AI.TENSORGET a |> AI.TENSORGET a |> AI.TENSORGET a |> AI.TENSORGET a",
            &small,
        )
        .err()
        .unwrap();
        assert!(e.0.contains("MAX_DAG_SIZE"), "{e}");
        // One key loaded many times is one tensor.
        let d = parse_str("LOAD 3 a a a |> AI.TENSORGET a", &Limits::default()).unwrap();
        assert_eq!(d.tensors.len(), 1);
        assert_eq!(
            parse_str("PERSIST 2 x x |> AI.TENSORSET x FLOAT 1", &l)
                .err()
                .unwrap()
                .0,
            "ERR PERSIST keys must be unique"
        );
    }

    #[test]
    fn key_positions_are_linear_whatever_the_counts() {
        let a = sp(
            "AI.DAGEXECUTE LOAD 18446744073709551614 a b |> AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 b",
        );
        assert_eq!(key_positions(&a), [3, 4, 7]);
        let a = sp("AI.DAGEXECUTE PERSIST 1 y ROUTING r |> AI.SCRIPTEXECUTE s f");
        assert_eq!(key_positions(&a), [3, 5, 8]);
    }
}
