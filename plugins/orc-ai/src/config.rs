//! Module configuration: load-time arguments and `AI.CONFIG`.

use std::path::PathBuf;

use crate::{
    args::{Reply, is, text, uint},
    model::Backend,
};

/// Default model chunk size: 511 MiB, as RedisAI.
pub const DEFAULT_CHUNK_SIZE: u64 = 511 * 1024 * 1024;

/// The module's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where backend plugins are looked for.
    pub backends_path: PathBuf,
    /// Worker threads per device queue.
    pub threads_per_queue: u64,
    /// Threads between operators (0: runtime default).
    pub inter_op_parallelism: u64,
    /// Threads inside operators (0: runtime default).
    pub intra_op_parallelism: u64,
    /// Chunk size for MODELGET, RDB and AOF.
    pub model_chunk_size: u64,
    /// Execution time limit in ms (accepted for compatibility).
    pub model_execution_timeout: u64,
    /// Backend memory limit in MB (accepted for compatibility).
    pub backend_memory_limit: u64,
    /// Backends to load at start, with explicit paths when given.
    pub preload: Vec<(Backend, Option<String>)>,
}

impl Config {
    /// Defaults, with backends next to the module file.
    pub fn new(module_dir: PathBuf) -> Self {
        Config {
            backends_path: module_dir,
            threads_per_queue: 1,
            inter_op_parallelism: 0,
            intra_op_parallelism: 0,
            model_chunk_size: DEFAULT_CHUNK_SIZE,
            model_execution_timeout: 5000,
            backend_memory_limit: 0,
            preload: Vec::new(),
        }
    }

    /// Apply load-time `KEY VALUE` arguments (BACKENDSPATH first, then in order).
    /// A backend name alone (`ONNX`) or with a path (`ONNX path`) is preloaded.
    pub fn apply_args(&mut self, args: &[&[u8]]) -> Result<(), Reply> {
        let mut pairs = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let k = args[i];
            if let Some(b) = Backend::parse(k) {
                // `ONNX` alone, or `ONNX <path>` when the next word is not a key.
                let next = args
                    .get(i + 1)
                    .filter(|n| Backend::parse(n).is_none() && !is_key(n));
                self.preload.push((b, next.map(|n| text(n))));
                i += if next.is_some() { 2 } else { 1 };
                continue;
            }
            let v = args.get(i + 1).ok_or_else(|| {
                Reply(format!(
                    "ERR error processing argument: {} (missing value)",
                    text(k)
                ))
            })?;
            pairs.push((k, *v));
            i += 2;
        }
        pairs.sort_by_key(|(k, _)| !is(k, "BACKENDSPATH"));
        for (k, v) in pairs {
            self.set(k, v).map_err(|_| {
                Reply(format!(
                    "ERR error processing argument: {} {}",
                    text(k),
                    text(v)
                ))
            })?;
        }
        Ok(())
    }

    fn set(&mut self, k: &[u8], v: &[u8]) -> Result<(), ()> {
        let pos = || uint(v).filter(|n| *n > 0).ok_or(());
        if is(k, "BACKENDSPATH") {
            self.backends_path = PathBuf::from(text(v));
        } else if is(k, "THREADS_PER_QUEUE") {
            self.threads_per_queue = pos()?;
        } else if is(k, "INTER_OP_PARALLELISM") {
            self.inter_op_parallelism = uint(v).ok_or(())?;
        } else if is(k, "INTRA_OP_PARALLELISM") {
            self.intra_op_parallelism = uint(v).ok_or(())?;
        } else if is(k, "MODEL_CHUNK_SIZE") {
            self.model_chunk_size = pos()?;
        } else if is(k, "MODEL_EXECUTION_TIMEOUT") {
            self.model_execution_timeout = uint(v).filter(|n| *n >= 1000).ok_or(())?;
        } else if is(k, "BACKEND_MEMORY_LIMIT") {
            self.backend_memory_limit = pos()?;
        } else {
            return Err(());
        }
        Ok(())
    }

    /// Resolve a backend plugin path (relative paths are under BACKENDSPATH).
    pub fn backend_file(&self, b: Backend, explicit: Option<&str>) -> PathBuf {
        match explicit {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            Some(p) => self.backends_path.join(p),
            None => self.backends_path.join(b.file_name()),
        }
    }
}

fn is_key(a: &[u8]) -> bool {
    [
        "BACKENDSPATH",
        "THREADS_PER_QUEUE",
        "INTER_OP_PARALLELISM",
        "INTRA_OP_PARALLELISM",
        "MODEL_CHUNK_SIZE",
        "MODEL_EXECUTION_TIMEOUT",
        "BACKEND_MEMORY_LIMIT",
    ]
    .iter()
    .any(|k| is(a, k))
}

/// A parsed `AI.CONFIG` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigCmd {
    /// `LOADBACKEND <backend> <path>`.
    LoadBackend(Backend, String),
    /// `BACKENDSPATH <path>`.
    BackendsPath(String),
    /// `MODEL_CHUNK_SIZE <n>`.
    ChunkSize(u64),
    /// `GET <name>`.
    Get(String),
}

/// Parse `AI.CONFIG` arguments after the command name.
pub fn parse_config(args: &[&[u8]]) -> Result<ConfigCmd, Reply> {
    let arity = || crate::args::arity("AI.CONFIG");
    let sub = args.first().ok_or_else(arity)?;
    if is(sub, "LOADBACKEND") {
        if args.len() < 3 {
            return Err(arity());
        }
        let b = Backend::parse(args[1]).ok_or_else(|| Reply::new("ERR unsupported backend"))?;
        Ok(ConfigCmd::LoadBackend(b, text(args[2])))
    } else if is(sub, "BACKENDSPATH") {
        Ok(ConfigCmd::BackendsPath(text(args.get(1).ok_or_else(
            || Reply::new("ERR BACKENDSPATH: missing path argument"),
        )?)))
    } else if is(sub, "MODEL_CHUNK_SIZE") {
        let v = args
            .get(1)
            .ok_or_else(|| Reply::new("ERR MODEL_CHUNK_SIZE: missing chunk size"))?;
        Ok(ConfigCmd::ChunkSize(
            uint(v)
                .filter(|n| *n > 0)
                .ok_or_else(|| Reply::new("ERR MODEL_CHUNK_SIZE: invalid chunk size"))?,
        ))
    } else if is(sub, "GET") {
        Ok(ConfigCmd::Get(
            text(args.get(1).ok_or_else(arity)?).to_ascii_uppercase(),
        ))
    } else {
        Err(Reply::new("ERR unsupported subcommand"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> Vec<&[u8]> {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(str::as_bytes)
            .collect()
    }

    #[test]
    fn load_args() {
        let mut c = Config::new("/m".into());
        c.apply_args(&sp(
            "THREADS_PER_QUEUE 4 BACKENDSPATH /b ONNX MODEL_CHUNK_SIZE 1024 TORCH custom/t.so",
        ))
        .unwrap();
        assert_eq!(c.threads_per_queue, 4);
        assert_eq!(c.model_chunk_size, 1024);
        assert_eq!(c.backends_path, PathBuf::from("/b"));
        assert_eq!(
            c.preload,
            vec![
                (Backend::Onnx, None),
                (Backend::Torch, Some("custom/t.so".into()))
            ]
        );
        assert_eq!(
            c.backend_file(Backend::Onnx, None),
            PathBuf::from("/b/liborc_ai_backend_onnx.so")
        );
        assert_eq!(
            c.backend_file(Backend::Torch, Some("custom/t.so")),
            PathBuf::from("/b/custom/t.so")
        );
        let mut c = Config::new("/m".into());
        assert_eq!(
            c.apply_args(&sp("THREADS_PER_QUEUE 0")).unwrap_err().0,
            "ERR error processing argument: THREADS_PER_QUEUE 0"
        );
        assert!(c.apply_args(&sp("NOPE 1")).is_err());
        assert!(c.apply_args(&sp("MODEL_EXECUTION_TIMEOUT 10")).is_err());
    }

    #[test]
    fn config_commands() {
        assert_eq!(
            parse_config(&sp("GET model_chunk_size")).unwrap(),
            ConfigCmd::Get("MODEL_CHUNK_SIZE".into())
        );
        assert_eq!(
            parse_config(&sp("MODEL_CHUNK_SIZE 0")).unwrap_err().0,
            "ERR MODEL_CHUNK_SIZE: invalid chunk size"
        );
        assert_eq!(
            parse_config(&sp("MODEL_CHUNK_SIZE")).unwrap_err().0,
            "ERR MODEL_CHUNK_SIZE: missing chunk size"
        );
        assert_eq!(
            parse_config(&sp("FOO")).unwrap_err().0,
            "ERR unsupported subcommand"
        );
        assert_eq!(
            parse_config(&sp("LOADBACKEND CAFFE x")).unwrap_err().0,
            "ERR unsupported backend"
        );
        assert_eq!(
            parse_config(&sp("BACKENDSPATH")).unwrap_err().0,
            "ERR BACKENDSPATH: missing path argument"
        );
    }
}
