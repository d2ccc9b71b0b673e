//! The users every protected shard has: orc's admin, and the restricted default user
//! applications connect as.

use orc_core::{Credentials, Error, Result};

/// What the default user may do: everything on data (keys, lists, hashes, tensors, models,
/// scripts, pub/sub), minus Redis's `@admin` and `@dangerous` categories, with back the
/// few of those that the SmartRedis clients use (`INFO`, `FLUSHDB`, `SAVE`, `KEYS`,
/// read-only `CLUSTER` and `CLIENT` subcommands). `CONFIG` from the default user reaches
/// orc-ai's `ORC.CONFIG` instead, which lets it read settings (not secrets) and set only
/// orc-ai's list of data-plane keys (`docs/security.md` lists them).
/// Without orc-ai the default user cannot use `CONFIG` at all.
pub(crate) const DEFAULT_USER_RULES: &str = "~* &* +@all -@admin -@dangerous \
+info +flushdb +flushall +save +keys +sort +sort_ro +lastsave +role \
+cluster|info +cluster|slots +cluster|shards +cluster|nodes +cluster|myid +cluster|keyslot \
+cluster|countkeysinslot +cluster|getkeysinslot \
+client|id +client|getname +client|setname +client|info +client|reply +client|tracking \
+client|trackinginfo +client|getredir +client|caching +acl|whoami +acl|cat +command";

/// ACL user names go into `redis.conf` lines: letters, digits, `-` and `_` only.
pub(crate) fn check_user_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name == "default"
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::config(format!(
            "`{name}` cannot be the admin user: use 1 to 64 letters, digits, `-` or `_`, not `default`"
        )));
    }
    Ok(())
}

/// The `user` and replication lines of a protected shard's `redis.conf`. Passwords are
/// stored as SHA-256 hashes; the admin's secret appears in clear only as `masterauth`, which
/// replicas need to follow their master (the file is readable by its owner only).
pub(crate) fn users(c: &Credentials) -> Vec<String> {
    let default_pass = match &c.client_password {
        Some(p) => format!("resetpass #{}", orc_secure::sha256_hex(p.as_bytes())),
        None => "nopass".to_string(),
    };
    vec![
        format!("user default on {default_pass} {DEFAULT_USER_RULES}"),
        format!(
            "user {} on #{} ~* &* +@all",
            c.admin_user,
            orc_secure::sha256_hex(c.admin_secret.as_bytes())
        ),
        format!("masteruser {}", c.admin_user),
        format!("masterauth {}", c.admin_secret),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_and_default_users_are_written_with_hashed_passwords() {
        let c = Credentials::new("orc-admin", "s3cret").with_client_password("pw");
        let lines = users(&c);
        assert!(
            lines[0].starts_with("user default on resetpass #"),
            "{lines:?}"
        );
        assert!(!lines[0].contains(" pw "), "{lines:?}");
        assert!(lines[0].contains("-@admin -@dangerous"), "{lines:?}");
        assert_eq!(
            lines[1],
            format!(
                "user orc-admin on #{} ~* &* +@all",
                orc_secure::sha256_hex(b"s3cret")
            )
        );
        let open = users(&Credentials::new("orc-admin", "s3cret"));
        assert!(open[0].starts_with("user default on nopass ~*"), "{open:?}");
    }

    #[test]
    fn admin_names_that_would_break_the_config_are_refused() {
        for bad in ["", "default", "a b", "a\nuser x", "x#y"] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
        check_user_name("orc-admin").unwrap();
    }
}
