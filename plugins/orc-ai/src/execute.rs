//! Parsing of the run commands (`AI.MODELEXECUTE`, `AI.SCRIPTEXECUTE` and the deprecated
//! `AI.MODELRUN`, `AI.SCRIPTRUN`) and of their key positions for cluster routing.
//!
//! Pure functions over the argument list (command name included), so they are unit-tested
//! and fuzzed without Redis. Counts come from clients and are never trusted: lists are
//! taken with [`take`], so `COMMAND GETKEYS ... INPUTS 18446744073709551614` is an empty
//! list, not a loop.

use crate::args::{Reply, is, take, text, uint};

/// The longest TIMEOUT honoured (longer ones are cut to this).
pub const MAX_TIMEOUT_MS: u64 = u32::MAX as u64;

/// What a run command asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunRequest<'a> {
    /// Input tensor keys.
    pub inputs: Vec<&'a [u8]>,
    /// Output tensor keys.
    pub outputs: Vec<&'a [u8]>,
    /// Script KEYS.
    pub keys: Vec<&'a [u8]>,
    /// Script ARGS.
    pub args: Vec<&'a [u8]>,
    /// Longest wait for the answer, in ms.
    pub timeout_ms: Option<u64>,
}

fn signed_count(a: Option<&&[u8]>, invalid: &str, not_positive: &str) -> Result<u64, Reply> {
    let n = a
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Reply::new(invalid))?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Reply::new(not_positive))
}

/// `TIMEOUT <ms>` at `i` (when present), the last words of the command.
fn timeout(a: &[&[u8]], i: usize, suffix: &str) -> Result<Option<u64>, Reply> {
    if i >= a.len() {
        return Ok(None);
    }
    if !is(a[i], "TIMEOUT") {
        return Err(Reply(format!("Invalid argument: {}", text(a[i]))));
    }
    let v = a
        .get(i + 1)
        .ok_or_else(|| Reply(format!("ERR No value provided for TIMEOUT{suffix}")))?;
    let ms = timeout_value(v)?;
    if let Some(extra) = a.get(i + 2) {
        return Err(Reply(format!("Invalid argument: {}", text(extra))));
    }
    Ok(Some(ms))
}

/// A TIMEOUT value: a positive number of ms (cut to [`MAX_TIMEOUT_MS`]).
pub fn timeout_value(v: &[u8]) -> Result<u64, Reply> {
    uint(v)
        .filter(|n| *n > 0)
        .map(|n| n.min(MAX_TIMEOUT_MS))
        .or_else(|| {
            // Larger than u64 but a positive integer: as long as allowed.
            let s = std::str::from_utf8(v).ok()?;
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.bytes().any(|b| b != b'0'))
                .then_some(MAX_TIMEOUT_MS)
        })
        .ok_or_else(|| Reply::new("ERR Invalid value for TIMEOUT"))
}

/// `AI.MODELEXECUTE key INPUTS n in... OUTPUTS m out... [TIMEOUT ms]`, for a model that
/// declares `declared_inputs` inputs and (when checked) `declared_outputs` outputs.
pub fn modelexecute<'a>(
    a: &[&'a [u8]],
    declared_inputs: usize,
    declared_outputs: Option<usize>,
) -> Result<RunRequest<'a>, Reply> {
    if a.len() < 8 {
        return Err(Reply::new(
            "ERR wrong number of arguments for 'AI.MODELEXECUTE' command",
        ));
    }
    if !is(a[2], "INPUTS") {
        return Err(Reply::new("ERR INPUTS not specified"));
    }
    let n = signed_count(
        a.get(3),
        "ERR Invalid argument for input_count",
        "ERR Input count must be a positive integer",
    )?;
    if declared_inputs > 0 && n != declared_inputs as u64 {
        return Err(Reply::new(
            "Number of keys given as INPUTS here does not match model definition",
        ));
    }
    let inputs = take(a, 4, n)
        .filter(|l| !l.iter().any(|x| is(x, "OUTPUTS")))
        .ok_or_else(|| Reply::new(
            "ERR number of input keys to AI.MODELEXECUTE command does not match the number of given arguments",
        ))?;
    let i = 4 + inputs.len();
    if !a.get(i).is_some_and(|x| is(x, "OUTPUTS")) {
        return Err(Reply::new("ERR OUTPUTS not specified"));
    }
    let m = signed_count(
        a.get(i + 1),
        "ERR Invalid argument for output_count",
        "ERR Output count must be a positive integer",
    )?;
    if let Some(d) = declared_outputs.filter(|d| *d > 0)
        && m != d as u64
    {
        return Err(Reply::new(
            "Number of keys given as OUTPUTS here does not match model definition",
        ));
    }
    let outputs = take(a, i + 2, m).ok_or_else(|| Reply::new(
        "ERR number of output keys to AI.MODELEXECUTE command does not match the number of given arguments",
    ))?;
    let timeout_ms = timeout(a, i + 2 + outputs.len(), "")?;
    Ok(RunRequest {
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
        timeout_ms,
        ..RunRequest::default()
    })
}

/// Split the deprecated `... INPUTS a b OUTPUTS c` lists.
type Lists<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

fn split_lists<'a>(a: &[&'a [u8]], from: usize) -> Option<Lists<'a>> {
    let i = (from..a.len()).find(|j| is(a[*j], "INPUTS"))?;
    let o = (i + 1..a.len()).find(|j| is(a[*j], "OUTPUTS"))?;
    Some((a[i + 1..o].to_vec(), a[o + 1..].to_vec()))
}

/// Deprecated `AI.MODELRUN key [TIMEOUT t] INPUTS k... OUTPUTS k...`.
pub fn modelrun<'a>(a: &[&'a [u8]], declared_inputs: usize) -> Result<RunRequest<'a>, Reply> {
    if a.len() < 6 {
        return Err(Reply::new(
            "ERR wrong number of arguments for 'AI.MODELRUN' command",
        ));
    }
    let mut timeout_ms = None;
    let mut from = 2;
    if is(a[2], "TIMEOUT") {
        timeout_ms = Some(timeout_value(a[3])?);
        from = 4;
    }
    let (inputs, outputs) =
        split_lists(a, from).ok_or_else(|| Reply::new("ERR INPUTS not specified"))?;
    if declared_inputs > 0 && inputs.len() != declared_inputs {
        return Err(Reply::new(
            "Number of keys given as INPUTS here does not match model definition",
        ));
    }
    Ok(RunRequest {
        inputs,
        outputs,
        timeout_ms,
        ..RunRequest::default()
    })
}

const SCRIPT_LISTS: [&str; 4] = ["KEYS", "INPUTS", "ARGS", "OUTPUTS"];

/// `AI.SCRIPTEXECUTE key fn [KEYS n k...] [INPUTS n t...] [ARGS n a...] [OUTPUTS n o...]
/// [TIMEOUT ms]`.
pub fn scriptexecute<'a>(a: &[&'a [u8]]) -> Result<RunRequest<'a>, Reply> {
    if a.len() < 5 {
        return Err(crate::args::arity("AI.SCRIPTEXECUTE"));
    }
    if !(is(a[3], "KEYS") || is(a[3], "INPUTS")) {
        return Err(Reply::new(
            "ERR KEYS or INPUTS scope must be provided first for AI.SCRIPTEXECUTE command",
        ));
    }
    let mut lists: [Option<Vec<&[u8]>>; 4] = [None, None, None, None];
    let mut i = 3;
    let mut timeout_ms = None;
    while i < a.len() {
        if is(a[i], "TIMEOUT") {
            timeout_ms = timeout(a, i, " in AI.SCRIPTEXECUTE").map_err(|x| {
                if x.0.starts_with("Invalid argument") {
                    Reply::new("ERR Encountered problem parsing AI.SCRIPTEXECUTE")
                } else {
                    x
                }
            })?;
            break;
        }
        let Some(which) = SCRIPT_LISTS.iter().position(|n| is(a[i], n)) else {
            return Err(Reply(format!(
                "ERR Invalid AI.SCRIPTEXECUTE command. Unexpected argument: {}",
                text(a[i])
            )));
        };
        if lists[which].is_some() {
            return Err(Reply(format!(
                "ERR Already Encountered {} scope in AI.SCRIPTEXECUTE command",
                SCRIPT_LISTS[which]
            )));
        }
        let n = a.get(i + 1).and_then(|x| uint(x)).ok_or_else(|| {
            Reply(if which == 0 {
                "ERR Invalid or negative value found in number of KEYS".to_string()
            } else {
                format!(
                    "ERR Invalid argument for {} count in AI.SCRIPTEXECUTE",
                    ["keys", "inputs", "keys", "outputs"][which]
                )
            })
        })?;
        let items = take(a, i + 2, n).ok_or_else(|| {
            Reply(if which == 0 {
                "ERR Number of pre declared KEYS to be used in the command does not match the number of given arguments".to_string()
            } else {
                format!(
                    "ERR number of {} to AI.SCRIPTEXECUTE command does not match the number of given arguments",
                    ["keys", "inputs", "args", "outputs"][which]
                )
            })
        })?;
        lists[which] = Some(items.to_vec());
        i += 2 + items.len();
    }
    let [keys, inputs, args, outputs] = lists.map(Option::unwrap_or_default);
    Ok(RunRequest {
        inputs,
        outputs,
        keys,
        args,
        timeout_ms,
    })
}

/// Deprecated `AI.SCRIPTRUN key fn [TIMEOUT t] INPUTS k... [$ k...] OUTPUTS k...`.
pub fn scriptrun<'a>(a: &[&'a [u8]]) -> Result<RunRequest<'a>, Reply> {
    if a.len() < 4 {
        return Err(crate::args::arity("AI.SCRIPTRUN"));
    }
    let mut from = 3;
    let mut timeout_ms = None;
    if a.get(3).is_some_and(|x| is(x, "TIMEOUT")) {
        timeout_ms = Some(timeout_value(a.get(4).copied().unwrap_or_default())?);
        from = 5;
    }
    let (inputs, outputs) = split_lists(a, from)
        .ok_or_else(|| Reply::new("ERR Unrecongnized parameter to SCRIPTRUN"))?;
    Ok(RunRequest {
        inputs: inputs.into_iter().filter(|x| *x != b"$").collect(),
        outputs,
        timeout_ms,
        ..RunRequest::default()
    })
}

/// Positions of the `n` items of a counted list (`KW n item...`) at its first occurrence.
fn counted_positions(a: &[&[u8]], kw: &str) -> Vec<usize> {
    let Some(i) = a.iter().position(|x| is(x, kw)) else {
        return Vec::new();
    };
    let n = a.get(i + 1).and_then(|x| uint(x)).unwrap_or(0);
    let available = a.len().saturating_sub(i + 2) as u64;
    (i + 2..i + 2 + n.min(available) as usize).collect()
}

/// Key positions of `AI.MODELEXECUTE` (model, inputs, outputs).
pub fn modelexecute_keys(a: &[&[u8]]) -> Vec<usize> {
    let mut pos = vec![1];
    pos.extend(counted_positions(a, "INPUTS"));
    pos.extend(counted_positions(a, "OUTPUTS"));
    tidy(pos, a.len())
}

fn tidy(mut pos: Vec<usize>, len: usize) -> Vec<usize> {
    pos.retain(|p| *p < len);
    pos.sort_unstable();
    pos.dedup();
    pos
}

/// Key positions of `AI.SCRIPTEXECUTE` (script, KEYS, INPUTS, OUTPUTS).
pub fn scriptexecute_keys(a: &[&[u8]]) -> Vec<usize> {
    let mut pos = vec![1];
    for kw in ["KEYS", "INPUTS", "OUTPUTS"] {
        pos.extend(counted_positions(a, kw));
    }
    tidy(pos, a.len())
}

/// Key positions of the deprecated `AI.MODELRUN` and `AI.SCRIPTRUN`.
pub fn deprecated_run_keys(a: &[&[u8]]) -> Vec<usize> {
    let mut pos = vec![1];
    if let Some(i) = a.iter().position(|x| is(x, "INPUTS")) {
        pos.extend((i + 1..a.len()).filter(|j| !is(a[*j], "OUTPUTS") && a[*j] != b"$"));
    }
    tidy(pos, a.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn modelexecute_as_smartredis_sends_it() {
        let a = sp("AI.MODELEXECUTE m INPUTS 2 a b OUTPUTS 1 c TIMEOUT 50");
        let r = modelexecute(&a, 2, Some(1)).unwrap();
        assert_eq!(r.inputs, [&b"a"[..], b"b"]);
        assert_eq!(r.outputs, [&b"c"[..]]);
        assert_eq!(r.timeout_ms, Some(50));
        let e = |s: &str| modelexecute(&sp(s), 0, None).unwrap_err().0;
        assert_eq!(
            e("AI.MODELEXECUTE m INPUTS 18446744073709551614 a OUTPUTS 1 c"),
            "ERR Invalid argument for input_count"
        );
        assert_eq!(
            e("AI.MODELEXECUTE m INPUTS -3 a OUTPUTS 1 c"),
            "ERR Input count must be a positive integer"
        );
        assert_eq!(
            e("AI.MODELEXECUTE m INPUTS 9223372036854775807 a OUTPUTS 1 c"),
            "ERR number of input keys to AI.MODELEXECUTE command does not match the number of given arguments"
        );
        assert_eq!(
            e("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 9223372036854775807 c"),
            "ERR number of output keys to AI.MODELEXECUTE command does not match the number of given arguments"
        );
        assert_eq!(
            e("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 c TIMEOUT 0"),
            "ERR Invalid value for TIMEOUT"
        );
        assert_eq!(
            e("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 c BOGUS"),
            "Invalid argument: BOGUS"
        );
        let r = modelexecute(
            &sp("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 c TIMEOUT 99999999999999999999999"),
            0,
            None,
        )
        .unwrap();
        assert_eq!(r.timeout_ms, Some(MAX_TIMEOUT_MS));
    }

    #[test]
    fn scriptexecute_lists() {
        let r = scriptexecute(&sp(
            "AI.SCRIPTEXECUTE s f KEYS 1 k INPUTS 2 a b ARGS 1 x OUTPUTS 1 o TIMEOUT 9",
        ))
        .unwrap();
        assert_eq!((r.keys.len(), r.inputs.len(), r.args.len()), (1, 2, 1));
        assert_eq!(r.timeout_ms, Some(9));
        let e = |s: &str| scriptexecute(&sp(s)).unwrap_err().0;
        assert_eq!(
            e("AI.SCRIPTEXECUTE s f INPUTS 18446744073709551615 a"),
            "ERR number of inputs to AI.SCRIPTEXECUTE command does not match the number of given arguments"
        );
        assert_eq!(
            e("AI.SCRIPTEXECUTE s f INPUTS 1 a INPUTS 1 b"),
            "ERR Already Encountered INPUTS scope in AI.SCRIPTEXECUTE command"
        );
        let r = scriptrun(&sp("AI.SCRIPTRUN s f INPUTS a $ b OUTPUTS c")).unwrap();
        assert_eq!(r.inputs, [&b"a"[..], b"b"]);
    }

    #[test]
    fn key_positions_take_what_is_there() {
        let a = sp("AI.MODELEXECUTE m INPUTS 18446744073709551614 a b OUTPUTS 1 c");
        assert_eq!(modelexecute_keys(&a), [1, 4, 5, 6, 7, 8]);
        let a = sp("AI.SCRIPTEXECUTE s f KEYS 1 k INPUTS 1 a OUTPUTS 5 o");
        assert_eq!(scriptexecute_keys(&a), [1, 5, 8, 11]);
        let a = sp("AI.MODELRUN m INPUTS a OUTPUTS b");
        assert_eq!(deprecated_run_keys(&a), [1, 3, 5]);
    }
}
