//! Reading process state from `/proc` and signalling process groups.

use std::{fs, io};

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// One-letter state (`R`, `S`, `D`, `Z`, `T`, ...).
    pub state: char,
    /// Start time in clock ticks since boot; with the pid it identifies the process.
    pub start_time: u64,
}

/// Parse the `stat` line; the command name may contain spaces and parentheses.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the file (index 0 here), starttime field 22 (index 19).
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// The state of `pid`, or `None` when no such process exists.
pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether a process whose main thread is a zombie still has other threads exiting
/// (it keeps its files and sockets until the last one is gone).
pub fn threads_left(pid: u32) -> bool {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count() > 1)
        .unwrap_or(false)
}

/// Send `signal` to the process group led by `pid`, falling back to the process alone.
pub fn signal_group(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(-pid, signal) } == 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The name of a signal number for messages.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        _ => return format!("signal {sig}"),
    };
    format!("{name} ({sig})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "1234 (redis-server 127.0.0.1:6379) S 1 1234 1234 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 5 0 987654 1 2 3";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        let me = stat(std::process::id()).expect("own process");
        assert!(me.start_time > 0);
    }
}
