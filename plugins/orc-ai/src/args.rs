//! Small helpers for RedisAI-style argument parsing.

/// An error reply (the text is sent as is; RedisAI omits `ERR ` on some errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply(pub String);

impl Reply {
    /// An error with this exact text.
    pub fn new(s: impl Into<String>) -> Self {
        Reply(s.into())
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `ERR wrong number of arguments for '<cmd>' command`.
pub fn arity(cmd: &str) -> Reply {
    Reply(format!("ERR wrong number of arguments for '{cmd}' command"))
}

/// Case-insensitive keyword match.
pub fn is(a: &[u8], kw: &str) -> bool {
    a.eq_ignore_ascii_case(kw.as_bytes())
}

/// Parse a non-negative integer.
pub fn uint(a: &[u8]) -> Option<u64> {
    std::str::from_utf8(a).ok()?.parse().ok()
}

/// Lossy text of an argument, for messages.
pub fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}
