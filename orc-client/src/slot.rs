//! Hash slots (CRC16-XMODEM, the Redis Cluster rule) and the shard prefixes SmartRedis uses
//! to place per-shard copies of models and scripts.

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

/// CRC16-XMODEM.
pub fn crc16(data: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(data)
}

/// The Redis Cluster hash slot of `key`.
pub fn hash_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// The short prefix SmartRedis uses for the shard whose lowest slot is `slot`: the
/// two-byte string whose CRC16 is `slot` (CRC16 over two bytes is a bijection), skipping
/// strings with braces by adding multiples of 16384. `{<prefix>}.name` then lands on that
/// shard, and both clients name the per-shard copies of a model the same way.
pub fn shard_prefix(slot: u16) -> Vec<u8> {
    for k in 0..4u32 {
        let target = u32::from(slot) + k * u32::from(SLOTS);
        let Ok(target) = u16::try_from(target) else {
            break;
        };
        for hi in 0..=255u8 {
            for lo in 0..=255u8 {
                let p = [hi, lo];
                if crc16(&p) == target && !p.contains(&b'{') && !p.contains(&b'}') {
                    return p.to_vec();
                }
            }
        }
    }
    slot.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_rules_and_known_values() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"123456789"), 12739);
    }

    #[test]
    fn shard_prefixes_match_smartredis() {
        // Observed from SmartRedis 0.6.1 on a standard 3-shard layout.
        assert_eq!(shard_prefix(0), b"\x00\x00");
        assert_eq!(shard_prefix(5461), b"8M");
        assert_eq!(shard_prefix(10923), b"\xed\xeb");
        for slot in [0, 1, 100, 5461, 8191, 16383] {
            let p = shard_prefix(slot);
            let mut key = b"{".to_vec();
            key.extend(&p);
            key.extend(b"}.model");
            assert_eq!(hash_slot(&key), slot);
        }
    }
}
