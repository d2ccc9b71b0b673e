//! Small helpers for RedisAI-style argument parsing.
//!
//! Every count read from a client is untrusted: [`take`] turns "`n` items from here" into
//! a slice or `None` without any arithmetic that could overflow or allocate.

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

/// The `n` items of `a` that start at `from`, or `None` when fewer remain. Safe for any
/// `from` and `n` (a client-supplied count such as `2^64-2` simply does not fit).
pub fn take<T>(a: &[T], from: usize, n: u64) -> Option<&[T]> {
    let rest = a.get(from..)?;
    rest.get(..usize::try_from(n).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_never_overflows() {
        let a = [1, 2, 3, 4];
        assert_eq!(take(&a, 1, 2), Some(&[2, 3][..]));
        assert_eq!(take(&a, 4, 0), Some(&[][..]));
        assert_eq!(take(&a, 5, 0), None);
        assert_eq!(take(&a, 1, 4), None);
        assert_eq!(take(&a, usize::MAX, u64::MAX), None);
        assert_eq!(take(&a, 2, u64::MAX - 1), None);
    }
}
