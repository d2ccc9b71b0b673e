//! Who may change a protected database (module argument `ADMIN_USER <name>`): only that
//! user may load backends, move BACKENDSPATH, or use `CONFIG` without limits. Everyone
//! else's `CONFIG` reaches `ORC.CONFIG` through a command filter: it may
//! read settings but not secrets, and set only the data-plane keys of [`CLIENT_SETTABLE`].
//!
//! Without `ADMIN_USER` nothing is restricted (a database open to all, as RedisAI runs).
//! The decisions are plain functions ([`decide_config`]), tested without Redis.

use crate::args::is;

/// Settings nobody but the admin may read: they hold passwords.
pub const SECRET_KEYS: [&str; 4] = [
    "requirepass",
    "masterauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// The settings any client may change: memory, eviction, script time, slow-log and
/// encoding thresholds. Nothing that moves files, opens ports, changes users or
/// persistence, or starts code.
pub const CLIENT_SETTABLE: [&str; 38] = [
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxmemory-eviction-tenacity",
    "lua-time-limit",
    "busy-reply-threshold",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "latency-monitor-threshold",
    "latency-tracking",
    "latency-tracking-info-percentiles",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-entries",
    "zset-max-ziplist-value",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "activerehashing",
    "hz",
    "dynamic-hz",
    "notify-keyspace-events",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "timeout",
    "lfu-log-factor",
];

/// What `ORC.CONFIG` does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it as `CONFIG` and answer as it answers.
    Forward,
    /// Run it as `CONFIG GET` and leave out [`SECRET_KEYS`].
    ForwardHidingSecrets,
    /// Refuse with this error.
    Refuse(String),
}

/// Decide a `CONFIG <args>` request from the admin (`admin`) or another user.
pub fn decide_config(args: &[&[u8]], admin: bool) -> Decision {
    if admin {
        return Decision::Forward;
    }
    let Some(sub) = args.first() else {
        return Decision::Forward; // CONFIG's own arity error
    };
    let text = |a: &[u8]| String::from_utf8_lossy(a).into_owned();
    if is(sub, "GET") {
        Decision::ForwardHidingSecrets
    } else if is(sub, "HELP") || is(sub, "RESETSTAT") {
        Decision::Forward
    } else if is(sub, "SET") {
        let keys = args[1..].iter().step_by(2);
        match keys
            .map(|k| text(k).to_ascii_lowercase())
            .find(|k| !CLIENT_SETTABLE.contains(&k.as_str()))
        {
            Some(k) => Decision::Refuse(format!(
                "NOPERM CONFIG SET {k} needs the database's admin user (use `orc db config set`); clients may set memory, eviction, script-time, slow-log and encoding settings only"
            )),
            None => Decision::Forward,
        }
    } else {
        Decision::Refuse(format!(
            "NOPERM CONFIG {} needs the database's admin user (use `orc db config`)",
            text(sub).to_ascii_uppercase()
        ))
    }
}

/// Whether a `CONFIG GET` reply pair for `key` may be shown to a client.
pub fn shown(key: &[u8]) -> bool {
    !SECRET_KEYS.iter().any(|s| is(key, s))
}

pub(crate) use server::*;

#[cfg_attr(any(test, fuzzing), allow(dead_code))]
mod server {
    use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue, raw};

    use super::{Decision, decide_config, shown};
    use crate::state::{lock, state};

    /// Whether the client running this command may do everything: no admin user is set,
    /// or it is that user.
    pub(crate) fn is_admin(ctx: &Context) -> bool {
        let Some(admin) = lock(&state().config).admin_user.clone() else {
            return true;
        };
        // SAFETY: the context is the current command's; the returned string is ours to
        // free (NULL when no user is attached).
        unsafe {
            let user = api!(RedisModule_GetCurrentUserName)(ctx.ctx);
            if user.is_null() {
                return false;
            }
            let mut len = 0;
            let p = api!(RedisModule_StringPtrLen)(user, &mut len);
            let same = std::slice::from_raw_parts(p.cast::<u8>(), len) == admin.as_bytes();
            api!(RedisModule_FreeString)(std::ptr::null_mut(), user);
            same
        }
    }

    /// The refusal for an admin-only AI.CONFIG subcommand.
    pub(crate) fn admin_only(what: &str) -> RedisError {
        RedisError::String(format!(
            "NOPERM AI.CONFIG {what} needs the database's admin user (backends are chosen when orc starts the database: --ai-backends)"
        ))
    }

    /// The command filter: `CONFIG ...` from anyone becomes `ORC.CONFIG ...`, which
    /// decides by user. orc-ai's own calls are not filtered (NOSELF).
    pub(crate) extern "C" fn config_filter(fctx: *mut raw::RedisModuleCommandFilterCtx) {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: Redis passes a live filter context; argument 0 exists for any
            // command; the replacement string is handed over to Redis.
            unsafe {
                if api!(RedisModule_CommandFilterArgsCount)(fctx) < 1 {
                    return;
                }
                let a0 = api!(RedisModule_CommandFilterArgGet)(fctx, 0);
                if a0.is_null() {
                    return;
                }
                let mut len = 0;
                let p = api!(RedisModule_StringPtrLen)(a0, &mut len);
                if !std::slice::from_raw_parts(p.cast::<u8>(), len).eq_ignore_ascii_case(b"config")
                {
                    return;
                }
                let name = b"orc.config";
                let s = api!(RedisModule_CreateString)(
                    std::ptr::null_mut(),
                    name.as_ptr().cast(),
                    name.len(),
                );
                api!(RedisModule_CommandFilterArgReplace)(fctx, 0, s);
            }
        });
    }

    /// Register [`config_filter`] (when an admin user is set).
    pub(crate) fn register(ctx: &Context) {
        if lock(&state().config).admin_user.is_none() {
            return;
        }
        // SAFETY: called from OnLoad with its context.
        unsafe {
            api!(RedisModule_RegisterCommandFilter)(
                ctx.ctx,
                Some(config_filter),
                raw::REDISMODULE_CMDFILTER_NOSELF as i32,
            );
        }
    }

    /// `ORC.CONFIG <CONFIG arguments>`: `CONFIG` for the admin, a restricted `CONFIG` for
    /// everyone else (see the module documentation).
    pub(crate) fn orc_config(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        let rest: Vec<&[u8]> = args[1..].iter().map(|a| a.as_slice()).collect();
        let decision = decide_config(&rest, is_admin(ctx));
        if let Decision::Refuse(msg) = decision {
            return Err(RedisError::String(msg));
        }
        let call_args: Vec<&RedisString> = args[1..].iter().collect();
        let reply = as_bulk(ctx.call("CONFIG", call_args.as_slice())?);
        if decision != Decision::ForwardHidingSecrets {
            return Ok(reply);
        }
        Ok(match reply {
            RedisValue::Array(items) => RedisValue::Array(
                items
                    .chunks(2)
                    .filter(|kv| match &kv[0] {
                        RedisValue::SimpleString(k) => shown(k.as_bytes()),
                        RedisValue::BulkString(k) => shown(k.as_bytes()),
                        RedisValue::StringBuffer(k) => shown(k),
                        RedisValue::BulkRedisString(k) => shown(k.as_slice()),
                        _ => true,
                    })
                    .flat_map(|kv| kv.to_vec())
                    .collect(),
            ),
            RedisValue::Map(m) => RedisValue::Map(
                m.into_iter()
                    .filter(|(k, _)| match k {
                        redis_module::redisvalue::RedisValueKey::String(k) => shown(k.as_bytes()),
                        redis_module::redisvalue::RedisValueKey::BulkString(k) => shown(k),
                        redis_module::redisvalue::RedisValueKey::BulkRedisString(k) => {
                            shown(k.as_slice())
                        }
                        _ => true,
                    })
                    .collect(),
            ),
            other => other,
        })
    }

    /// `CONFIG`'s reply as `CONFIG` itself sends it: a module call hands back every string
    /// inside an array as a status string, but clients (SmartRedis's `config_get`) expect
    /// bulk strings there. A top-level status (`OK`) stays one.
    fn as_bulk(v: RedisValue) -> RedisValue {
        fn inner(v: RedisValue) -> RedisValue {
            match v {
                RedisValue::SimpleString(s) => RedisValue::BulkString(s),
                RedisValue::SimpleStringStatic(s) => RedisValue::BulkString(s.to_string()),
                RedisValue::Array(items) => {
                    RedisValue::Array(items.into_iter().map(inner).collect())
                }
                other => other,
            }
        }
        match v {
            RedisValue::Array(items) => RedisValue::Array(items.into_iter().map(inner).collect()),
            RedisValue::Map(m) => {
                RedisValue::Map(m.into_iter().map(|(k, v)| (k, inner(v))).collect())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(args: &[&str], admin: bool) -> Decision {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        decide_config(&a, admin)
    }

    #[test]
    fn the_admin_may_do_anything() {
        assert_eq!(d(&["SET", "dir", "/"], true), Decision::Forward);
        assert_eq!(d(&["REWRITE"], true), Decision::Forward);
    }

    #[test]
    fn clients_set_only_data_plane_keys_and_never_read_secrets() {
        assert_eq!(d(&["SET", "maxmemory", "1gb"], false), Decision::Forward);
        assert_eq!(
            d(&["set", "LUA-TIME-LIMIT", "5000", "maxmemory", "1"], false),
            Decision::Forward
        );
        for k in [
            "dir",
            "dbfilename",
            "requirepass",
            "bind",
            "port",
            "save",
            "appendonly",
        ] {
            match d(&["SET", k, "x"], false) {
                Decision::Refuse(m) => {
                    assert!(m.starts_with(&format!("NOPERM CONFIG SET {k} ")), "{m}")
                }
                other => panic!("{k}: {other:?}"),
            }
        }
        // One forbidden key in a multi-key SET refuses the whole request.
        assert!(matches!(
            d(&["SET", "maxmemory", "1", "dir", "/tmp"], false),
            Decision::Refuse(_)
        ));
        assert_eq!(d(&["GET", "*"], false), Decision::ForwardHidingSecrets);
        assert!(matches!(d(&["REWRITE"], false), Decision::Refuse(_)));
        assert_eq!(d(&["RESETSTAT"], false), Decision::Forward);
        assert!(!shown(b"MasterAuth") && !shown(b"requirepass") && shown(b"maxmemory"));
    }
}
