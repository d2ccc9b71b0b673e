//! The SmartRedis-compatible client for orc (**early skeleton**).
//!
//! What exists today is the routing rule every SmartRedis client shares: a key's Redis
//! Cluster hash slot, CRC16 (XMODEM) of the key, or of its `{hash tag}` when it has a
//! non-empty one, modulo 16384. Tensors, datasets, models and scripts follow.
//!
//! ```
//! use orc_client::hash_slot;
//! assert_eq!(hash_slot(b"123456789"), 12739);
//! // Keys with the same hash tag always land on the same shard.
//! assert_eq!(hash_slot(b"{sim.0}.tensor_a"), hash_slot(b"{sim.0}.tensor_b"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The part of `key` that is hashed: the first `{...}` with something inside, else the key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|b| *b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|b| *b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The Redis Cluster hash slot of `key`.
pub fn hash_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key)) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_follow_the_redis_rules() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"no-tag"), b"no-tag");
        // Values from the Redis Cluster specification / `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"bar"), 5061);
    }
}
