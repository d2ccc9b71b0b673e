//! Secrets and signatures.

use ring::{digest, hmac, rand::SecureRandom};

/// 32 random bytes from the operating system, as 64 lowercase hex digits.
///
/// # Panics
/// When the operating system has no randomness to give (never on Linux after boot).
pub fn random_secret() -> String {
    let mut buf = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator");
    hex(&buf)
}

/// The SHA-256 digest of `data`, as lowercase hex (Redis ACL's `#<hash>` form).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// The HMAC-SHA-256 of `message` under `key`, as lowercase hex.
pub fn sign(key: &[u8], message: &[u8]) -> String {
    hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message).as_ref())
}

/// Whether `tag` (hex) is the HMAC-SHA-256 of `message` under `key`, compared in constant
/// time.
pub fn verify(key: &[u8], message: &[u8], tag: &str) -> bool {
    let Some(raw) = unhex(tag) else {
        return false;
    };
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), message, &raw).is_ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_and_are_hex() {
        let a = random_secret();
        let b = random_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn sha256_matches_a_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn signatures_bind_key_and_message() {
        let t = sign(b"k", b"m");
        assert!(verify(b"k", b"m", &t));
        assert!(!verify(b"k2", b"m", &t));
        assert!(!verify(b"k", b"m2", &t));
        assert!(!verify(b"k", b"m", &t[2..]));
        assert!(!verify(b"k", b"m", "zz"));
        assert!(!verify(b"k", b"m", ""));
    }
}
