//! Ctrl-C, SIGTERM and SIGHUP as a flag that long operations poll.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turn Ctrl-C into a flag the launch polls, so launched shards are cleaned up.
pub(crate) fn catch_interrupt() -> Arc<AtomicBool> {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SIGTERM and SIGHUP too: batch systems, `timeout` and closed terminals end a start
    // that way, and a batch job still in the queue must be cancelled then as well.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        f.store(true, Ordering::SeqCst);
    });
    flag
}
