//! The temporary files custmetrics has open right now (outputs being written, stdin spooled,
//! gzip decompressed), so that a program can remove them when it is interrupted.
//!
//! Destructors do not run when a process is killed by Ctrl-C, so `tempfile`'s own cleanup cannot
//! help there; the CLI's interrupt handler calls [`remove_all`] and then exits. A library user
//! with its own signal handling can do the same.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers `path` until the returned guard is dropped.
pub(crate) fn track(path: &Path) -> Tracked {
    if let Ok(mut v) = IN_PROGRESS.lock() {
        v.push(path.to_path_buf());
    }
    Tracked(path.to_path_buf())
}

/// Unregisters its path when dropped (after the file was renamed into place or deleted).
#[derive(Debug)]
pub(crate) struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Ok(mut v) = IN_PROGRESS.lock()
            && let Some(i) = v.iter().position(|p| *p == self.0)
        {
            v.swap_remove(i);
        }
    }
}

/// The temporary files currently open.
pub fn in_progress() -> Vec<PathBuf> {
    IN_PROGRESS.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Removes every temporary file currently open (best effort); for interrupt handlers.
pub fn remove_all() {
    for p in in_progress() {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tmp");
        std::fs::write(&p, "partial").unwrap();
        let guard = track(&p);
        assert!(in_progress().contains(&p));
        remove_all();
        assert!(!p.exists());
        drop(guard);
        assert!(!in_progress().contains(&p));
    }
}
