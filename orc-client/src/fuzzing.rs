//! The body of the coverage-guided fuzz target `client_reply` (`plugins/orc-ai/fuzz`, run
//! by `scripts/fuzz`), here so that `cargo test` replays its seed corpus and every crash
//! ever found without instrumentation.

use std::io::BufReader;

use redis::Value;

use crate::resp::{Limits, read_reply};

const LIMITS: Limits = Limits {
    bytes: 4096,
    depth: 32,
};

/// Memory one value holds, as [`crate::resp`] counts it (payload bytes plus one value
/// each; lines are counted there too, so a reply's cost is at least this).
fn cost(v: &Value) -> u64 {
    let own = std::mem::size_of::<Value>() as u64;
    own + match v {
        Value::BulkString(b) => b.len() as u64,
        Value::SimpleString(s) => s.len() as u64,
        Value::Array(items) => items.iter().map(cost).sum(),
        _ => 0,
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Read replies from `data`, as a server would send them, until one is refused or the
/// bytes end. Never panics; every reply accepted is within the limits.
pub fn reply(data: &[u8]) {
    // A small buffer, so lines and payloads cross buffer boundaries.
    let mut r = BufReader::with_capacity(16, data);
    while let Ok(v) = read_reply(&mut r, LIMITS) {
        assert!(cost(&v) <= LIMITS.bytes, "{v:?}");
        assert!(depth(&v) <= LIMITS.depth, "{v:?}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn every_corpus_input_and_every_crash_found_is_replayed() {
        let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/orc-ai/fuzz");
        let mut files = Vec::new();
        for dir in ["corpus", "regressions"] {
            if let Ok(entries) = std::fs::read_dir(format!("{fuzz}/{dir}/client_reply")) {
                files.extend(entries.flatten().map(|e| e.path()));
            }
        }
        assert!(!files.is_empty(), "no seed corpus for client_reply");
        let failed: Vec<_> = files
            .iter()
            .filter(|f| {
                let data = std::fs::read(f).unwrap();
                std::panic::catch_unwind(|| super::reply(&data)).is_err()
            })
            .collect();
        assert!(failed.is_empty(), "client_reply: {failed:?}");
    }
}
