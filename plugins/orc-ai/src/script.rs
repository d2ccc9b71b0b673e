//! Scripts: `AI.SCRIPTSTORE` / `AI.SCRIPTSET` parsing and `AI.SCRIPTGET` replies.

use crate::{
    args::{Reply, arity, is, take, text, uint},
    model::valid_device,
};

/// Everything stored about a script except its compiled form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptMeta {
    /// Device as given.
    pub device: String,
    /// Free-form tag.
    pub tag: String,
    /// Declared entry points (empty for scripts stored with the deprecated SCRIPTSET).
    pub entry_points: Vec<String>,
    /// TorchScript source.
    pub source: String,
}

/// Parse `AI.SCRIPTSTORE key device [TAG t] ENTRY_POINTS n fn... SOURCE src`.
pub fn parse_store(args: &[&[u8]]) -> Result<ScriptMeta, Reply> {
    if args.len() < 6 {
        return Err(arity("AI.SCRIPTSTORE"));
    }
    if !valid_device(args[1]) {
        return Err(Reply::new("ERR Invalid DEVICE"));
    }
    let mut m = ScriptMeta {
        device: text(args[1]),
        tag: String::new(),
        entry_points: Vec::new(),
        source: String::new(),
    };
    let mut i = 2;
    if is(args[i], "TAG") {
        m.tag = text(args.get(i + 1).ok_or_else(|| arity("AI.SCRIPTSTORE"))?);
        i += 2;
    }
    if !args.get(i).is_some_and(|a| is(a, "ENTRY_POINTS")) {
        return Err(Reply::new(
            "ERR Insufficient arguments, missing script entry points",
        ));
    }
    let n = args.get(i + 1).and_then(|a| uint(a)).ok_or_else(|| {
        Reply::new("ERR Non numeric entry points number provided to AI.SCRIPTSTORE command")
    })?;
    let eps = take(args, i + 2, n)
        .ok_or_else(|| Reply::new("ERR Insufficient arguments, missing script entry points"))?;
    m.entry_points = eps.iter().map(|a| text(a)).collect();
    i += 2 + eps.len();
    if !args.get(i).is_some_and(|a| is(a, "SOURCE")) || i + 1 >= args.len() {
        return Err(Reply::new(
            "ERR Insufficient arguments, missing script SOURCE",
        ));
    }
    m.source = text(args[i + 1]);
    Ok(m)
}

/// Parse the deprecated `AI.SCRIPTSET key device [TAG t] SOURCE src`.
pub fn parse_set(args: &[&[u8]]) -> Result<ScriptMeta, Reply> {
    if args.len() != 4 && args.len() != 6 {
        return Err(arity("AI.SCRIPTSET"));
    }
    if !valid_device(args[1]) {
        return Err(Reply::new("ERR Invalid DEVICE"));
    }
    let mut m = ScriptMeta {
        device: text(args[1]),
        tag: String::new(),
        entry_points: Vec::new(),
        source: String::new(),
    };
    let mut i = 2;
    if args.len() == 6 {
        if !is(args[2], "TAG") {
            return Err(Reply::new(
                "ERR Insufficient arguments, missing script SOURCE",
            ));
        }
        m.tag = text(args[3]);
        i = 4;
    }
    if !is(args[i], "SOURCE") {
        return Err(Reply::new(
            "ERR Insufficient arguments, missing script SOURCE",
        ));
    }
    m.source = text(args[i + 1]);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn scriptstore_and_scriptset() {
        let m = parse_store(&sp("s CPU TAG v ENTRY_POINTS 2 f g SOURCE src")).unwrap();
        assert_eq!(m.entry_points, ["f", "g"]);
        assert_eq!((m.tag.as_str(), m.source.as_str()), ("v", "src"));
        assert_eq!(
            parse_store(&sp("s CPU SOURCE src x y")).unwrap_err().0,
            "ERR Insufficient arguments, missing script entry points"
        );
        assert_eq!(
            parse_store(&sp("s CPU ENTRY_POINTS x f SOURCE src"))
                .unwrap_err()
                .0,
            "ERR Non numeric entry points number provided to AI.SCRIPTSTORE command"
        );
        assert_eq!(
            parse_store(&sp("s CPU ENTRY_POINTS 1 f NOSOURCE"))
                .unwrap_err()
                .0,
            "ERR Insufficient arguments, missing script SOURCE"
        );
        let m = parse_set(&sp("s CPU SOURCE def")).unwrap();
        assert!(m.entry_points.is_empty());
        assert_eq!(
            parse_set(&sp("s CPU SOURCE")).unwrap_err().0,
            "ERR wrong number of arguments for 'AI.SCRIPTSET' command"
        );
    }
}
