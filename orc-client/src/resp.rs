//! Reading one RESP2 reply with bounds: a reply may cost at most a given number of bytes
//! of memory (its payload plus the size of each value it holds) and nest at most a given
//! depth. A length or count that claims more than is left of the budget is refused before
//! anything is read or reserved, so a hostile or broken server cannot make the client
//! allocate more than the budget, however large the claim.
//!
//! Values are built as [`redis::Value`], so the rest of the client keeps the redis crate's
//! conversions; server errors keep their code (`MOVED`, `ASK`, `TRYAGAIN`, ...).

use std::io::{self, BufRead, Read};

use redis::Value;

/// The longest status, error or length line accepted.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// What one reply may cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of memory: every payload byte, plus `size_of::<Value>()` per value.
    pub(crate) bytes: u64,
    /// Arrays nested in arrays, at most.
    pub(crate) depth: usize,
}

/// Why a reply could not be read.
#[derive(Debug)]
pub(crate) enum ReplyError {
    /// The connection failed or timed out.
    Io(io::Error),
    /// The reply would cost more than the limit (bytes).
    TooLarge(u64),
    /// The bytes are not a RESP2 reply (the message says how).
    Protocol(String),
}

impl From<io::Error> for ReplyError {
    fn from(e: io::Error) -> Self {
        ReplyError::Io(e)
    }
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Io(e) => write!(f, "{e}"),
            ReplyError::TooLarge(limit) => write!(
                f,
                "the reply is larger than the limit of {limit} bytes (SR_MAX_REPLY_SIZE)"
            ),
            ReplyError::Protocol(m) => write!(f, "not a valid reply: {m}"),
        }
    }
}

const VALUE_COST: u64 = std::mem::size_of::<Value>() as u64;

struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    fn take(&mut self, n: u64) -> Result<(), ReplyError> {
        self.left = self
            .left
            .checked_sub(n)
            .ok_or(ReplyError::TooLarge(self.limit))?;
        Ok(())
    }
}

/// Read one reply from `r`.
pub(crate) fn read_reply(r: &mut impl BufRead, limits: Limits) -> Result<Value, ReplyError> {
    let mut budget = Budget {
        left: limits.bytes,
        limit: limits.bytes,
    };
    read_value(r, &mut budget, limits.depth)
}

fn read_value(
    r: &mut impl BufRead,
    budget: &mut Budget,
    depth: usize,
) -> Result<Value, ReplyError> {
    budget.take(VALUE_COST)?;
    let line = read_line(r, budget)?;
    let (kind, rest) = line
        .split_first()
        .ok_or_else(|| ReplyError::Protocol("an empty line".into()))?;
    match kind {
        b'+' => Ok(match rest {
            b"OK" => Value::Okay,
            _ => {
                // Invalid UTF-8 grows as it is replaced (3 bytes for each bad byte).
                let text = String::from_utf8_lossy(rest).into_owned();
                budget.take(text.len().saturating_sub(rest.len()) as u64)?;
                Value::SimpleString(text)
            }
        }),
        b'-' => server_error(rest),
        b':' => Ok(Value::Int(number(rest)?)),
        b'$' => match number(rest)? {
            -1 => Ok(Value::Nil),
            n if n < 0 => Err(ReplyError::Protocol(format!("a bulk length of {n}"))),
            n => read_bulk(r, budget, n as u64).map(Value::BulkString),
        },
        b'*' => match number(rest)? {
            -1 => Ok(Value::Nil),
            n if n < 0 => Err(ReplyError::Protocol(format!("an array length of {n}"))),
            n => {
                if depth == 0 {
                    return Err(ReplyError::Protocol("arrays nested too deeply".into()));
                }
                let n = n as u64;
                // Each element costs at least one value: refuse a count the budget
                // cannot hold before reading any of it.
                if n.saturating_mul(VALUE_COST) > budget.left {
                    return Err(ReplyError::TooLarge(budget.limit));
                }
                let mut items = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    items.push(read_value(r, budget, depth - 1)?);
                }
                Ok(Value::Array(items))
            }
        },
        other => Err(ReplyError::Protocol(format!(
            "unexpected type byte {:?}",
            char::from(*other)
        ))),
    }
}

/// A server error line (without its `-`), with its code, as the redis crate makes it.
fn server_error(text: &[u8]) -> Result<Value, ReplyError> {
    let mut line = Vec::with_capacity(text.len() + 3);
    line.push(b'-');
    line.extend(text.iter().map(|&b| if b == b'\r' { b' ' } else { b }));
    line.extend_from_slice(b"\r\n");
    redis::parse_redis_value(&line).map_err(|e| ReplyError::Protocol(e.to_string()))
}

fn number(text: &[u8]) -> Result<i64, ReplyError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ReplyError::Protocol(format!(
                "{:?} is not a number",
                String::from_utf8_lossy(&text[..text.len().min(40)])
            ))
        })
}

/// One line without its CRLF; at most [`MAX_LINE`] bytes, charged to the budget.
fn read_line(r: &mut impl BufRead, budget: &mut Budget) -> Result<Vec<u8>, ReplyError> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if line.len() + chunk.len() > MAX_LINE {
            return Err(ReplyError::Protocol(format!(
                "a line longer than {MAX_LINE} bytes"
            )));
        }
        budget.take(chunk.len() as u64)?;
        line.extend_from_slice(chunk);
        let used = chunk.len();
        r.consume(used);
        if done {
            break;
        }
    }
    match line.strip_suffix(b"\r\n") {
        Some(l) => Ok(l.to_vec()),
        None => Err(ReplyError::Protocol("a line not ended by CRLF".into())),
    }
}

/// A bulk payload of `len` bytes and its CRLF. The length is checked against the budget
/// first, so only a length the budget allows is ever reserved.
fn read_bulk(r: &mut impl BufRead, budget: &mut Budget, len: u64) -> Result<Vec<u8>, ReplyError> {
    budget.take(len)?;
    let mut data = Vec::with_capacity(len as usize);
    let got = r.take(len).read_to_end(&mut data)?;
    if (got as u64) < len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    let mut end = [0u8; 2];
    r.read_exact(&mut end)?;
    if &end != b"\r\n" {
        return Err(ReplyError::Protocol(
            "a bulk string not ended by CRLF".into(),
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ROOMY: Limits = Limits {
        bytes: 1 << 20,
        depth: 8,
    };

    fn read(bytes: &[u8], limits: Limits) -> Result<Value, ReplyError> {
        read_reply(&mut io::BufReader::with_capacity(7, bytes), limits)
    }

    #[test]
    fn every_resp2_type_reads_as_the_redis_crate_reads_it() {
        let cases: [&[u8]; 9] = [
            b"+OK\r\n",
            b"+PONG\r\n",
            b":-42\r\n",
            b"$5\r\nhe\r\no\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n+b\r\n$-1\r\n",
            b"-MOVED 3999 127.0.0.1:6381\r\n",
        ];
        for c in cases {
            let ours = read(c, ROOMY).unwrap();
            let theirs = redis::parse_redis_value(c).unwrap();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(c));
        }
        let Value::ServerError(e) = read(b"-ASK 12 h:1\r\n", ROOMY).unwrap() else {
            panic!("not an error")
        };
        assert_eq!(e.code(), "ASK");
        assert_eq!(e.details(), Some("12 h:1"));
    }

    #[test]
    fn claims_beyond_the_budget_are_refused_before_reading() {
        let small = Limits {
            bytes: 4096,
            depth: 8,
        };
        // Nothing follows the claims: a refusal, not a wait for data.
        for claim in [
            &b"$4097\r\n"[..],
            b"$9000000000000\r\n",
            b"*4000000000\r\n",
            b"*100\r\n",
        ] {
            assert!(
                matches!(read(claim, small), Err(ReplyError::TooLarge(4096))),
                "{}",
                String::from_utf8_lossy(claim)
            );
        }
        // Many small values that each fit, but not all together.
        let mut many = b"*60\r\n".to_vec();
        for _ in 0..60 {
            many.extend_from_slice(b"$40\r\n");
            many.extend_from_slice(&[b'x'; 40]);
            many.extend_from_slice(b"\r\n");
        }
        assert!(matches!(read(&many, small), Err(ReplyError::TooLarge(_))));
        assert!(read(&many, ROOMY).is_ok());
    }

    #[test]
    fn malformed_replies_are_errors() {
        let deep = b"*1\r\n".repeat(9);
        for bad in [
            &b"$-2\r\n"[..],
            b"*-7\r\n",
            b":12x\r\n",
            b"$3\r\nabcd\r\n",
            b"+OK\n",
            b"%1\r\n",
            b"\r\n",
            &deep,
        ] {
            assert!(
                matches!(read(bad, ROOMY), Err(ReplyError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"+".as_slice(), &[b'a'; MAX_LINE], b"\r\n"].concat();
        assert!(matches!(read(&long, ROOMY), Err(ReplyError::Protocol(_))));
        for cut in [&b"$5\r\nab"[..], b"*2\r\n:1\r\n", b"+OK"] {
            assert!(matches!(read(cut, ROOMY), Err(ReplyError::Io(_))));
        }
    }
}
