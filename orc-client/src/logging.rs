//! SmartRedis-style logging: `SR_LOG_FILE` (append; stdout when unset) and `SR_LOG_LEVEL`
//! (`quiet`, `info`, `debug`, `developer`), lines `<context>@<HH-MM-SS>:<message>`, with
//! `WARNING: ` and `ERROR: ` prefixes. Records also go to `tracing`.

use std::io::Write;

use crate::error::{Error, Result};

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    Quiet,
    /// Normal.
    Info,
    /// More.
    Debug,
    /// Everything.
    Developer,
}

impl LogLevel {
    /// Parse `SR_LOG_LEVEL` (case-insensitive).
    pub fn parse(s: &str) -> Result<LogLevel> {
        match s.to_ascii_lowercase().as_str() {
            "quiet" => Ok(LogLevel::Quiet),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "developer" => Ok(LogLevel::Developer),
            other => Err(Error::Config(format!(
                "SR_LOG_LEVEL={other:?}: expected quiet, info, debug or developer"
            ))),
        }
    }

    /// The level from the environment (default `info`).
    pub fn from_env() -> Result<LogLevel> {
        std::env::var("SR_LOG_LEVEL").map_or(Ok(LogLevel::Info), |v| LogLevel::parse(&v))
    }
}

fn hh_mm_ss() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{:02}-{:02}-{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

fn write_line(line: &str) -> Result<()> {
    match std::env::var_os("SR_LOG_FILE") {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"))
            .map_err(|e| {
                Error::Config(format!(
                    "SR_LOG_FILE {}: {e}",
                    std::path::Path::new(&path).display()
                ))
            }),
        None => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            Ok(())
        }
    }
}

fn log(context: &str, level: LogLevel, prefix: &str, msg: &str) -> Result<()> {
    tracing::debug!(target: "orc_client::log", context, "{prefix}{msg}");
    if level == LogLevel::Quiet || level > LogLevel::from_env()? {
        return Ok(());
    }
    write_line(&format!("{context}@{}:{prefix}{msg}", hh_mm_ss()))
}

/// Log data at `level` (SmartRedis's `log_data`).
pub fn log_data(context: &str, level: LogLevel, msg: &str) -> Result<()> {
    log(context, level, "", msg)
}

/// Log a warning (SmartRedis's `log_warning`).
pub fn log_warning(context: &str, level: LogLevel, msg: &str) -> Result<()> {
    log(context, level, "WARNING: ", msg)
}

/// Log an error (SmartRedis's `log_error`).
pub fn log_error(context: &str, level: LogLevel, msg: &str) -> Result<()> {
    log(context, level, "ERROR: ", msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(LogLevel::parse("DEBUG").unwrap(), LogLevel::Debug);
        assert!(LogLevel::parse("loud").is_err());
        assert!(LogLevel::Info < LogLevel::Developer);
        assert_eq!(hh_mm_ss().len(), 8);
    }
}
