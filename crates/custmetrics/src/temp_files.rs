//! The temporary files custmetrics has open right now (outputs being written, stdin spooled,
//! gzip decompressed), so that a program can remove them when it is interrupted.
//!
//! Destructors do not run when a process is killed by Ctrl-C, so `tempfile`'s own cleanup cannot
//! help there; the CLI's interrupt handler calls [`remove_all_then`] with a closure that exits.
//! A library user with its own signal handling can do the same.
//!
//! # Why one lock, held across create and rename
//!
//! An interrupt handler runs on its own thread, at any moment of the write phase. Three windows
//! used to leave a temporary file behind (issue 18): a file created before it was registered, a
//! file renamed into place while the handler was deleting, and a writer creating a new file after
//! the handler had deleted the old ones but before the process exited. So:
//!
//! - output temporaries get a name chosen and *registered first*, then are created with
//!   `create_new`, all while `IN_PROGRESS`'s lock is held (`create_in`);
//! - the rename into place and the unregistering happen under the same lock (`TempFile::persist`);
//! - [`remove_all_then`] holds the lock while it deletes and while its closure runs, so a closure
//!   that exits the process leaves every writer blocked before its next create or rename.
//!
//! Then each output is either complete under its final name or absent. Blocking SIGINT around
//! the critical sections would also work, but needs `libc`/`nix` and per-thread signal masks;
//! a mutex is portable and the sections are a few system calls long.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The registry, even if a thread panicked while holding it (a list of paths stays valid).
fn registry() -> MutexGuard<'static, Vec<PathBuf>> {
    IN_PROGRESS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unregister(v: &mut Vec<PathBuf>, path: &Path) {
    if let Some(i) = v.iter().position(|p| p == path) {
        v.swap_remove(i);
    }
}

/// Registers `path` until the returned guard is dropped.
///
/// The file should be created only after this call; a file created first can leak if the
/// process is interrupted in between (prefer [`create_in`]).
pub(crate) fn track(path: &Path) -> Tracked {
    registry().push(path.to_path_buf());
    Tracked(path.to_path_buf())
}

/// A new temporary file in the system's temporary directory (an input spooled from stdin,
/// decompressed, transcoded or converted from a workbook), registered *before* it is created,
/// under the registry's lock, like [`create_in`]'s outputs: an interrupt at any moment either
/// finds it registered or stops the process before it exists. The guard unregisters it.
pub(crate) fn named_temp() -> io::Result<(tempfile::NamedTempFile, Tracked)> {
    named_temp_prefixed(".custmetrics-input-")
}

/// As [`named_temp`], named with another prefix (what the file holds).
pub(crate) fn named_temp_prefixed(prefix: &str) -> io::Result<(tempfile::NamedTempFile, Tracked)> {
    let file = tempfile::Builder::new().prefix(prefix).make(|path| {
        let mut v = registry();
        v.push(path.to_path_buf());
        let created = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path);
        if created.is_err() {
            unregister(&mut v, path);
        }
        created
    })?;
    let tracked = Tracked(file.path().to_path_buf());
    Ok((file, tracked))
}

/// Unregisters its path when dropped (after the file was renamed into place or deleted).
#[derive(Debug)]
pub(crate) struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        unregister(&mut registry(), &self.0);
    }
}

/// A registered temporary file, deleted when dropped unless [`TempFile::persist`] renamed it.
#[derive(Debug)]
pub(crate) struct TempFile {
    file: File,
    path: PathBuf,
    /// False once persisted (or deleted), so that `drop` leaves the path alone.
    live: bool,
}

/// Makes temporary names unique within the process; the pid makes them unique across processes,
/// and `create_new` settles any remaining clash (a stale file from a killed run).
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Creates a new temporary file in `dir`, named after `target_name`, registered before it exists.
pub(crate) fn create_in(dir: &Path, target_name: &str) -> io::Result<TempFile> {
    let mut v = registry();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            ".{target_name}.{}-{n}.custmetrics-tmp",
            std::process::id()
        ));
        v.push(path.clone());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                return Ok(TempFile {
                    file,
                    path,
                    live: true,
                });
            }
            Err(e) => {
                unregister(&mut v, &path);
                if e.kind() != io::ErrorKind::AlreadyExists || n > u64::from(u32::MAX) {
                    return Err(e);
                }
            }
        }
    }
}

impl TempFile {
    /// The open file.
    pub(crate) fn as_file(&self) -> &File {
        &self.file
    }

    /// The open file, to write to.
    pub(crate) fn as_file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temporary path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file over `target` and unregisters it, as one step for an interrupt handler.
    pub(crate) fn persist(mut self, target: &Path) -> io::Result<()> {
        let mut v = registry();
        std::fs::rename(&self.path, target)?;
        unregister(&mut v, &self.path);
        self.live = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.live {
            let mut v = registry();
            // Best effort: the handler may have removed it already.
            let _ = std::fs::remove_file(&self.path);
            unregister(&mut v, &self.path);
        }
    }
}

/// The temporary files currently open.
pub fn in_progress() -> Vec<PathBuf> {
    registry().clone()
}

/// Removes every temporary file currently open (best effort).
pub fn remove_all() {
    remove_all_then(|| ());
}

/// Removes every temporary file currently open (best effort), then runs `then` before any other
/// thread can create or rename an output's temporary file: for interrupt handlers, with a
/// `then` that exits the process, so that nothing is written after the cleanup.
///
/// `then` must not call the other functions of this module (the lock is not reentrant).
pub fn remove_all_then<T>(then: impl FnOnce() -> T) -> T {
    let mut v = registry();
    for p in v.drain(..) {
        let _ = std::fs::remove_file(p);
    }
    then()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: `remove_all` empties the process-wide registry, so tests of this module running
    // in parallel would delete each other's files.
    #[test]
    fn registered_from_creation_to_rename_or_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tmp");
        std::fs::write(&p, "partial").unwrap();
        let guard = track(&p);
        assert!(in_progress().contains(&p));
        remove_all();
        assert!(!p.exists());
        drop(guard);
        assert!(!in_progress().contains(&p));

        let target = dir.path().join("out.md");
        let mut t = create_in(dir.path(), "out.md").unwrap();
        let temp = t.path().to_path_buf();
        assert!(temp.exists() && in_progress().contains(&temp));
        std::io::Write::write_all(t.as_file_mut(), b"done").unwrap();
        t.persist(&target).unwrap();
        assert!(!in_progress().contains(&temp) && !temp.exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "done");

        let t = create_in(dir.path(), "out.md").unwrap();
        let temp = t.path().to_path_buf();
        drop(t);
        assert!(!temp.exists() && !in_progress().contains(&temp));

        // The handler's cleanup leaves nothing for a writer to rename afterwards.
        let t = create_in(dir.path(), "other.md").unwrap();
        let temp = t.path().to_path_buf();
        assert_eq!(remove_all_then(|| 7), 7);
        assert!(!temp.exists() && !in_progress().contains(&temp));
        assert!(t.persist(&dir.path().join("other.md")).is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.md"]);
    }
}
