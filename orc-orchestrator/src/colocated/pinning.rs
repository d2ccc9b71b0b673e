//! CPU lists and affinity: the colocated database on its CPUs, the application's ranks
//! kept off them unless something already bound the rank.

use orc_core::{Error, Result};

/// The highest CPU number accepted (the kernel's `cpu_set_t` holds 1024).
const MAX_CPU: usize = 1023;

/// Parse a Linux CPU list (`0-3,8,10-11`) into sorted, distinct CPU numbers.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>> {
    let bad = |why: &str| Error::config(format!("CPU list `{text}`: {why}"));
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.trim().is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part.trim(), part.trim()),
        };
        let a: usize = a.parse().map_err(|_| bad("expected numbers and ranges"))?;
        let b: usize = b.parse().map_err(|_| bad("expected numbers and ranges"))?;
        if a > b || b > MAX_CPU {
            return Err(bad(&format!("ranges go upwards, up to CPU {MAX_CPU}")));
        }
        cpus.extend(a..=b);
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(bad("no CPU in it"));
    }
    Ok(cpus)
}

/// The shortest list form of sorted CPU numbers (`0-3,8`).
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// The CPUs thread `tid` (0: the calling thread) may run on.
pub fn affinity(tid: libc::pid_t) -> Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; zeroed is an empty set, and the kernel writes at
    // most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(Error::io(
            "reading the CPU affinity",
            std::io::Error::last_os_error(),
        ));
    }
    Ok((0..=MAX_CPU)
        // SAFETY: the index is below CPU_SETSIZE.
        .filter(|c| unsafe { libc::CPU_ISSET(*c, &set) })
        .collect())
}

/// Let thread `tid` (0: the calling thread) run on `cpus` only.
pub fn set_affinity(tid: libc::pid_t, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: as in `affinity`; CPU_SET indices are bounded by MAX_CPU.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for c in cpus.iter().filter(|c| **c <= MAX_CPU) {
        unsafe { libc::CPU_SET(*c, &mut set) };
    }
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Pin every thread of process `pid` to `cpus` (threads it starts later inherit it).
pub fn pin_process(pid: u32, cpus: &[usize]) -> Result<()> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| Error::io(format!("listing {dir}"), e))?;
    for t in tasks.flatten() {
        let Some(tid) = t
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        match set_affinity(tid, cpus) {
            Ok(()) => {}
            // A thread that ended meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => {
                return Err(Error::io(
                    format!(
                        "pinning the database (pid {pid}) to CPUs {}",
                        format_cpu_list(cpus)
                    ),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// The CPUs this process could be given at most: its cgroup's cpuset where there is one
/// (a job's CPUs under a workload manager), else every online CPU.
pub fn available_cpus() -> Vec<usize> {
    cgroup_cpus()
        .or_else(|| {
            std::fs::read_to_string("/sys/devices/system/cpu/online")
                .ok()
                .and_then(|t| parse_cpu_list(&t).ok())
        })
        .unwrap_or_default()
}

fn cgroup_cpus() -> Option<Vec<usize>> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mut dir = std::path::PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    loop {
        if let Ok(t) = std::fs::read_to_string(dir.join("cpuset.cpus.effective"))
            && let Ok(c) = parse_cpu_list(&t)
        {
            return Some(c);
        }
        if !dir.pop() || !dir.starts_with("/sys/fs/cgroup") {
            return None;
        }
    }
}

/// Where the database runs and where the ranks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The database's CPUs.
    pub db: Vec<usize>,
    /// The rank's CPUs, when orc should set them (`None`: leave the rank as it is).
    pub app: Option<Vec<usize>>,
}

/// Decide the CPUs: `pin` (or the first `db_cpus` of the rank's own CPUs) for the
/// database; the rest for the rank, but only when nothing bound the rank before (its CPUs
/// are all it could have) and some CPU is left for it.
pub fn place(
    allowed: &[usize],
    available: &[usize],
    db_cpus: usize,
    pin: Option<&[usize]>,
) -> Result<Placement> {
    let db: Vec<usize> = match pin {
        Some(p) => {
            if let Some(c) = p.iter().find(|c| !allowed.contains(c)) {
                return Err(Error::config(format!(
                    "--pin {}: CPU {c} is not one this rank may use ({})",
                    format_cpu_list(p),
                    format_cpu_list(allowed)
                )));
            }
            p.to_vec()
        }
        None => allowed.iter().copied().take(db_cpus.max(1)).collect(),
    };
    let bound = !available.is_empty() && allowed != available;
    let rest: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| !db.contains(c))
        .collect();
    let app = (!bound && !rest.is_empty()).then_some(rest);
    Ok(Placement { db, app })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            [0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(parse_cpu_list("2,1,2").unwrap(), [1, 2]);
        for bad in ["", "a", "3-1", "0-99999", "1-"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn placement_keeps_user_bindings() {
        let all = [0, 1, 2, 3];
        let p = place(&all, &all, 1, None).unwrap();
        assert_eq!(p.db, [0]);
        assert_eq!(p.app.as_deref(), Some(&[1, 2, 3][..]));
        let p = place(&all, &all, 2, Some(&[2, 3])).unwrap();
        assert_eq!(
            (p.db.as_slice(), p.app.as_deref()),
            (&[2, 3][..], Some(&[0, 1][..]))
        );
        // A rank bound to CPUs 2-3 by its launcher stays so.
        let p = place(&[2, 3], &all, 1, None).unwrap();
        assert_eq!((p.db.as_slice(), p.app), (&[2][..], None));
        // One CPU: the database shares it.
        let p = place(&[0], &[0], 1, None).unwrap();
        assert_eq!((p.db.as_slice(), p.app), (&[0][..], None));
        assert!(place(&all, &all, 1, Some(&[7])).is_err());
    }

    #[test]
    fn affinity_is_read_and_set() {
        let mine = affinity(0).unwrap();
        assert!(!mine.is_empty());
        let t = std::thread::spawn(move || {
            set_affinity(0, &mine[..1]).unwrap();
            affinity(0).unwrap()
        });
        assert_eq!(t.join().unwrap().len(), 1);
    }
}
