//! Memory LiteRT reads inputs from and writes outputs into.
//!
//! LiteRT writes a run's outputs into buffers its caller provides, and for some models
//! (those whose output shapes are only known while they run, such as a transformer
//! encoder's after a batch change) the shape it reports before the run is stale and it
//! writes past a buffer sized from it without a word (a heap overflow in the server). So
//! outputs are never sized from that report: each run's outputs go into [`Outputs`], one
//! large reservation of address space per worker thread, split evenly between the
//! outputs, each part followed by an inaccessible guard page. Only the pages a run
//! actually writes take memory, and they are given back after a large output. An output
//! larger than its part would hit the guard page and stop the process, as running out of
//! memory would; the part is [`RESERVE`] divided by the output count (64 GiB for one).

use std::{cell::RefCell, ptr::NonNull};

/// Address space reserved per worker thread for outputs (only written pages use memory).
pub(crate) const RESERVE: usize = 64 << 30;
/// Smallest reservation tried where the system refuses a large one (strict overcommit).
const MIN_RESERVE: usize = 256 << 20;
/// After a run that wrote more than this, the written pages are given back.
const KEEP: usize = 64 << 20;

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .ok()
        .filter(|p| *p > 0)
        .unwrap_or(4096)
}

/// One thread's output reservation.
pub(crate) struct Outputs {
    base: NonNull<u8>,
    len: usize,
    /// The current split: its part count, part addresses and bytes per part.
    split: (usize, Vec<*mut u8>, usize),
}

impl Outputs {
    fn reserve() -> Result<Self, String> {
        let mut len = RESERVE;
        loop {
            // SAFETY: a fresh private anonymous mapping, nothing else refers to it.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                let base = NonNull::new(p.cast::<u8>()).ok_or("mmap returned null")?;
                return Ok(Outputs {
                    base,
                    len,
                    split: (0, Vec::new(), 0),
                });
            }
            if len <= MIN_RESERVE {
                return Err(format!(
                    "cannot reserve {} MiB of address space for outputs: {}",
                    len >> 20,
                    std::io::Error::last_os_error()
                ));
            }
            len /= 2;
        }
    }

    /// Split into `n` parts, each followed by a guard page: their addresses and the bytes
    /// each may hold.
    pub(crate) fn parts(&mut self, n: usize) -> Result<(&[*mut u8], usize), String> {
        let n = n.max(1);
        if self.split.0 != n {
            self.split = (0, Vec::new(), 0);
            let (starts, cap) = self.split_into(n)?;
            self.split = (n, starts, cap);
        }
        Ok((&self.split.1, self.split.2))
    }

    fn split_into(&mut self, n: usize) -> Result<(Vec<*mut u8>, usize), String> {
        let page = page();
        let stride = (self.len / n) / page * page;
        if stride < 2 * page {
            return Err(format!("too many outputs ({n})"));
        }
        let cap = stride - page;
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            // SAFETY: k * stride + stride <= len, inside the mapping.
            let start = unsafe { self.base.as_ptr().add(k * stride) };
            // SAFETY: the guard page lies inside the mapping; making it inaccessible (and
            // the rest accessible again, from an earlier split) changes nothing else.
            unsafe {
                if libc::mprotect(start.cast(), cap, libc::PROT_READ | libc::PROT_WRITE) != 0
                    || libc::mprotect(start.add(cap).cast(), page, libc::PROT_NONE) != 0
                {
                    return Err(format!(
                        "cannot set up output memory: {}",
                        std::io::Error::last_os_error()
                    ));
                }
            }
            out.push(start);
        }
        Ok((out, cap))
    }

    /// After a run whose outputs have been copied out: give written pages back when many.
    pub(crate) fn release(&mut self, written: usize) {
        if written > KEEP {
            // SAFETY: the whole mapping is ours; its contents are no longer needed.
            unsafe { libc::madvise(self.base.as_ptr().cast(), self.len, libc::MADV_DONTNEED) };
        }
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        // SAFETY: base/len is the mapping made in reserve, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

thread_local! {
    static OUTPUTS: RefCell<Option<Outputs>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's output reservation (made on first use).
pub(crate) fn with_outputs<T>(
    f: impl FnOnce(&mut Outputs) -> Result<T, String>,
) -> Result<T, String> {
    OUTPUTS.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|_| "output memory in use")?;
        if slot.is_none() {
            *slot = Some(Outputs::reserve()?);
        }
        match slot.as_mut() {
            Some(o) => f(o),
            None => Err("no output memory".into()),
        }
    })
}

/// A 64-byte aligned copy of a tensor's bytes (LiteRT refuses host memory that is not),
/// followed by at least 64 bytes of padding (XNNPACK's kernels may read a little past the
/// end of an input).
pub(crate) struct Aligned {
    raw: Vec<u8>,
    offset: usize,
    len: usize,
}

impl Aligned {
    /// A copy of `data`.
    pub(crate) fn copy(data: &[u8]) -> Self {
        let mut raw = vec![0u8; data.len() + 128];
        let offset = raw.as_ptr().align_offset(64);
        raw[offset..offset + data.len()].copy_from_slice(data);
        Aligned {
            raw,
            offset,
            len: data.len(),
        }
    }

    /// The aligned bytes.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.raw[self.offset..].as_mut_ptr()
    }

    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_aligned_writable_and_released() {
        with_outputs(|o| {
            let (parts, cap) = o.parts(3)?;
            let parts = parts.to_vec();
            assert_eq!(parts.len(), 3);
            assert!(cap >= MIN_RESERVE / 3 - 2 * page());
            for p in &parts {
                assert_eq!(*p as usize % 64, 0);
                // SAFETY: each part holds cap bytes.
                unsafe {
                    p.write(7);
                    p.add(cap - 1).write(9);
                    assert_eq!(p.add(cap - 1).read(), 9);
                }
            }
            o.release(KEEP + 1);
            // SAFETY: still mapped; released pages read back as zeros.
            assert_eq!(unsafe { parts[0].read() }, 0);
            // A new split into one part makes the old guard pages writable again.
            let (one, cap1) = o.parts(1)?;
            assert!(cap1 > cap);
            // SAFETY: inside the single part.
            unsafe { one[0].add(cap).write(1) };
            Ok(())
        })
        .expect("output memory");
        let mut a = Aligned::copy(&[1, 2, 3]);
        assert_eq!(a.as_mut_ptr() as usize % 64, 0);
        assert_eq!(a.len(), 3);
        // SAFETY: three bytes were copied there.
        assert_eq!(
            unsafe { std::slice::from_raw_parts(a.as_mut_ptr(), 3) },
            [1, 2, 3]
        );
    }
}
