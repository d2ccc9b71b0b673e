//! The children a launcher started and still owns, by step id: their exit statuses while
//! the launching process lives.

use std::{
    collections::HashMap,
    hash::Hash,
    os::unix::process::ExitStatusExt,
    process::{Child, ExitStatus},
    sync::Mutex,
    time::{Duration, Instant},
};

use orc_core::{JobStatus, StepStatus};

/// Child processes by key (a pid, a scheduler's step id), reaped on demand.
#[derive(Debug)]
pub struct Children<K> {
    map: Mutex<HashMap<K, Child>>,
}

impl<K> Default for Children<K> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> Children<K> {
    /// Keep `child` under `key`.
    pub fn insert(&self, key: K, child: Child) {
        self.lock().insert(key, child);
    }

    /// Whether a child is kept under `key`.
    pub fn contains(&self, key: &K) -> bool {
        self.lock().contains_key(key)
    }

    /// How the child under `key` exited, once it has (`None` while it runs, or when no
    /// child is kept under `key`). A child whose main thread is already a zombie gets a
    /// moment for its other threads: until they have exited the kernel does not report
    /// it, although `/proc` already shows the zombie.
    pub fn exited(&self, key: &K) -> std::io::Result<Option<ExitStatus>> {
        let mut map = self.lock();
        let Some(child) = map.get_mut(key) else {
            return Ok(None);
        };
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let r = child.try_wait()?;
            let zombie = super::stat(pid).is_some_and(|s| s.state == 'Z');
            if r.is_some() || !zombie || Instant::now() >= deadline {
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Wait at most `limit` for the child under `key` to exit; how it did.
    pub fn wait_exited(&self, key: &K, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if !self.contains(key) {
                return None;
            }
            if let Ok(Some(e)) = self.exited(key) {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop keeping the child under `key`, reaping it if it has exited.
    pub fn forget(&self, key: &K) {
        if let Some(mut c) = self.lock().remove(key) {
            let _ = c.try_wait();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Child>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The step status of a process that exited with `exit`: completed on exit code 0, else
/// failed, with the exit code (`128 + signal` for a signal, named in the detail) and
/// `native` as the native state.
pub fn exit_status(exit: ExitStatus, native: &str) -> StepStatus {
    let mut s = match (exit.code(), exit.signal()) {
        (Some(0), _) => StepStatus::new(JobStatus::Completed),
        (None, Some(sig)) => StepStatus::new(JobStatus::Failed)
            .detail(format!("killed by {}", super::signal_name(sig))),
        _ => StepStatus::new(JobStatus::Failed),
    };
    s.exit_code = exit.code().or(exit.signal().map(|sig| 128 + sig));
    s.native_state = Some(native.into());
    s
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn exits_are_seen_and_mapped() {
        let kids: Children<&str> = Children::default();
        kids.insert("ok", Command::new("true").spawn().unwrap());
        kids.insert(
            "three",
            Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap(),
        );
        kids.insert(
            "killed",
            Command::new("sh")
                .args(["-c", "kill -9 $$"])
                .spawn()
                .unwrap(),
        );
        let s = |k| {
            exit_status(
                kids.wait_exited(&k, Duration::from_secs(10)).unwrap(),
                "exited",
            )
        };
        assert_eq!(s("ok").status, JobStatus::Completed);
        assert_eq!(
            (s("three").status, s("three").exit_code),
            (JobStatus::Failed, Some(3))
        );
        let k = s("killed");
        assert_eq!(k.exit_code, Some(137));
        assert!(k.detail.unwrap_or_default().contains("SIGKILL"));
        kids.forget(&"ok");
        assert!(!kids.contains(&"ok"));
        assert!(kids.exited(&"ok").unwrap().is_none());
    }
}
