//! Private directories and files, and the checks made before trusting them.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use orc_core::{Error, Result};

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: plain system call without arguments.
    unsafe { libc::geteuid() }
}

fn insecure(path: &Path, problem: impl Into<String>) -> Error {
    Error::Insecure {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// Refuse `path` (whose metadata is `meta`) unless this user owns it; `why` says what
/// follows from that.
fn owned(path: &Path, meta: &std::fs::Metadata, why: &str) -> Result<()> {
    let me = euid();
    if meta.uid() == me {
        return Ok(());
    }
    Err(insecure(
        path,
        format!(
            "belongs to uid {}, not to this user ({me}); {why}",
            meta.uid()
        ),
    ))
}

/// Check who owns `meta` and who may write it; tighten what others may read.
fn check_owner_and_mode(path: &Path, meta: &std::fs::Metadata, private_mode: u32) -> Result<()> {
    owned(
        path,
        meta,
        "orc keeps its state private and will not use it (choose another --state-dir or ORC_STATE_DIR)",
    )?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(insecure(
            path,
            format!(
                "can be written by other users (mode {mode:o}); run `chmod {private_mode:o} {}` and check what is inside before using it again",
                path.display()
            ),
        ));
    }
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(private_mode))
            .map_err(io("restricting the permissions of", path))?;
    }
    Ok(())
}

/// Create `dir` (and missing parents) so that only its owner can enter it, or check an
/// existing one: it must be a directory of this user that nobody else can write;
/// permissions that let others read it are tightened to `0700`.
pub fn private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("creating", dir))?;
    }
    check_private_dir(dir)
}

/// Check an existing directory as [`private_dir`] does, without creating it.
pub fn check_private_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(io("inspecting", dir))?;
    if !meta.is_dir() {
        return Err(insecure(dir, "is not a directory"));
    }
    check_owner_and_mode(dir, &meta, 0o700)
}

/// Check an existing file of orc's state (a reconnect file, say): a regular file of this
/// user that nobody else can write; read permissions for others are taken away.
pub fn check_private_file(file: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(file).map_err(io("inspecting", file))?;
    if !meta.is_file() {
        return Err(insecure(file, "is not a regular file"));
    }
    check_owner_and_mode(file, &meta, 0o600)
}

/// Create (or truncate) `file` for writing, readable by its owner only; a symbolic link
/// or a file of another user at that path is refused.
pub fn create_private(file: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .map_err(io("creating", file))?;
    let meta = f.metadata().map_err(io("inspecting", file))?;
    owned(file, &meta, "refusing to write into it")?;
    if meta.mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io("restricting the permissions of", file))?;
    }
    Ok(f)
}

/// Write `bytes` to `file` atomically (a private temporary file beside it, synced, then
/// renamed over it, and the directory synced), readable by its owner only.
pub fn write_private(file: &Path, bytes: &[u8]) -> Result<()> {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io("writing", &tmp))
        .and_then(|()| std::fs::rename(&tmp, file).map_err(io("writing", file)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Read a file that holds a secret: it must be a regular file of this user that nobody
/// else can read or write, and at most `max_len` bytes long.
pub fn read_private(file: &Path, max_len: u64) -> Result<Vec<u8>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .map_err(io("opening", file))?;
    let meta = f.metadata().map_err(io("inspecting", file))?;
    if !meta.is_file() {
        return Err(insecure(file, "is not a regular file"));
    }
    owned(file, &meta, "it cannot be this user's secret")?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(insecure(
            file,
            format!(
                "can be read or written by other users (mode {mode:o}); it holds a secret, so treat it as known to them: stop the database, remove the file and start again"
            ),
        ));
    }
    if meta.len() > max_len {
        return Err(insecure(
            file,
            format!(
                "is {} bytes long, more than the {max_len} expected",
                meta.len()
            ),
        ));
    }
    let mut out = Vec::new();
    f.take(max_len + 1)
        .read_to_end(&mut out)
        .map_err(io("reading", file))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        let f = d.join("x");
        write_private(&f, b"1").unwrap();
        assert_eq!(mode(&f), 0o600);
        write_private(&f, b"2").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"2");
        let log = d.join("log");
        std::fs::write(&log, b"old").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create_private(&log).unwrap());
        assert_eq!(mode(&log), 0o600);
        assert_eq!(std::fs::read(&log).unwrap(), b"");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            2,
            "no temporary left"
        );
    }

    #[test]
    fn readable_directories_are_tightened_and_writable_ones_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("s");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&d).unwrap_err().to_string();
        assert!(
            e.contains("can be written by other users (mode 777)"),
            "{e}"
        );
        assert!(e.contains("chmod 700"), "{e}");
        assert_eq!(mode(&d), 0o777, "a refused directory is left as it was");
    }

    #[test]
    fn secrets_open_to_others_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("secret");
        write_private(&f, b"s3cret").unwrap();
        assert_eq!(read_private(&f, 64).unwrap(), b"s3cret");
        let e = read_private(&f, 3).unwrap_err().to_string();
        assert!(e.contains("more than the 3 expected"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_private(&f, 64).unwrap_err().to_string();
        assert!(e.contains("can be read or written by other users"), "{e}");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(read_private(&link, 64).is_err(), "links are not followed");
        assert!(create_private(&link).is_err(), "links are not followed");
    }

    #[test]
    fn paths_of_other_users_are_refused() {
        if euid() != 0 {
            eprintln!("skipped: needs root to give files away");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("theirs");
        std::fs::create_dir(&d).unwrap();
        let f = t.path().join("their-secret");
        write_private(&f, b"x").unwrap();
        for p in [&d, &f] {
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }
        let e = private_dir(&d).unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
        let e = read_private(&f, 64).unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
        let e = check_private_file(&f).unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
        let e = create_private(&f).unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
    }
}
