//! Writing output files: reports, rejected rows, saved models, generated data.
//!
//! A regular file (or a new path) is written to a temporary file beside it and renamed over it
//! only when complete, so a reader never sees half a report and an interrupted run leaves the old
//! file (see [`crate::temp_files`]). Anything else is written *in place*, because a rename would
//! replace it with a regular file (issue 18: `--output /dev/stdout` run as root replaced the
//! device node): character and block devices (`/dev/null`), FIFOs, Unix sockets, and open
//! descriptors (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`).
//!
//! Symbolic links are followed: the file the link points to is replaced and the link is kept
//! (as `sed --follow-symlinks` does), so a link into a shared reports folder stays a link.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use crate::temp_files::TempFile;
use crate::{Error, Result};

/// Writes what `f` produces to `path`: atomically (temporary file, then rename) for a regular
/// file or a new path, in place for a device, FIFO, socket or open descriptor.
///
/// # Errors
/// [`Error::Io`] when the target cannot be opened or written, or is a directory.
pub fn write_output(path: &Path, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let mut out = OutputFile::create(path)?;
    {
        let mut w = io::BufWriter::new(&mut out);
        f(&mut w)
            .and_then(|()| w.flush())
            .map_err(|e| Error::io(path, e))?;
    }
    out.commit()
}

/// Refuses an output path that is one of the input files (the same file, through any link).
///
/// Only a regular file can be overwritten: `--output /dev/stdout` while reading `-` or
/// `/dev/stdin` from the same terminal is fine.
///
/// # Errors
/// [`Error::OutputIsInput`].
pub fn refuse_inputs(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    if let Some(out) = FileId::of(output)
        && inputs.iter().any(|i| FileId::of(i).as_ref() == Some(&out))
    {
        return Err(Error::OutputIsInput {
            path: output.to_path_buf(),
        });
    }
    Ok(())
}

/// Refuses two outputs of one run that would be written to the same file.
///
/// `files` are the single-file outputs, each named by its setting (`output`, `rejects`,
/// `save_model`); `csv_dir`, the directory the CSV tables go to, collides with a file inside it
/// for which `is_table` says it has a table's name (the report passes
/// `report::render::is_csv_table_file`: this module sits below the report and does not name
/// it). Devices, FIFOs and descriptors can be shared: nothing is replaced there.
///
/// # Errors
/// [`Error::OutputsCollide`].
pub fn refuse_shared_outputs(
    files: &[(&str, &Path)],
    csv_dir: Option<(&str, &Path)>,
    is_table: impl Fn(&str) -> bool,
) -> Result<()> {
    let replaced: Vec<(&str, &Path, PathBuf)> = files
        .iter()
        .filter_map(|&(setting, path)| match Target::of(path) {
            Ok(Target::Replace(target)) => Some((setting, path, target)),
            _ => None,
        })
        .collect();
    for (i, (second, path, target)) in replaced.iter().enumerate() {
        for (first, _, other) in replaced.iter().take(i) {
            let same_inode = FileId::of(target).is_some_and(|t| FileId::of(other) == Some(t));
            if target == other || same_inode {
                return Err(Error::OutputsCollide {
                    first: (*first).to_string(),
                    second: (*second).to_string(),
                    path: path.to_path_buf(),
                });
            }
        }
        if let Some((dir_setting, dir)) = csv_dir {
            let dir = resolve(dir).unwrap_or_else(|_| dir.to_path_buf());
            let is_table = target
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(&is_table);
            if is_table && target.parent() == Some(dir.as_path()) {
                return Err(Error::OutputsCollide {
                    first: dir_setting.to_string(),
                    second: (*second).to_string(),
                    path: path.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// An output being written; [`OutputFile::commit`] puts it in place.
#[derive(Debug)]
pub(crate) struct OutputFile {
    /// The path as given, for messages.
    path: PathBuf,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    /// A temporary file, renamed over the target (the resolved path) on commit.
    Replace {
        temp: TempFile,
        target: PathBuf,
    },
    /// The target itself (a device, a FIFO, a descriptor's file).
    InPlace(File),
    Stdout(io::Stdout),
    Stderr(io::Stderr),
    #[cfg(unix)]
    Socket(std::os::unix::net::UnixStream),
}

impl OutputFile {
    /// Opens `path` for writing: a temporary file beside a regular or new file, else the target.
    pub(crate) fn create(path: &Path) -> Result<OutputFile> {
        let io_err = |e| Error::io(path, e);
        let sink = match Target::of(path).map_err(io_err)? {
            Target::Replace(target) => {
                let (dir, name) = match (target.parent(), target.file_name()) {
                    (Some(d), Some(n)) => (d, n.to_string_lossy()),
                    _ => return Err(io_err(io::ErrorKind::InvalidInput.into())),
                };
                let temp = crate::temp_files::create_in(dir, &name).map_err(io_err)?;
                // An existing file keeps its permissions (a private report stays private); a
                // new one gets the usual mode for new files under the umask.
                if let Ok(m) = std::fs::metadata(&target) {
                    temp.as_file()
                        .set_permissions(m.permissions())
                        .map_err(io_err)?;
                }
                Sink::Replace { temp, target }
            }
            Target::InPlace { path: p, append } => Sink::InPlace(
                // No truncation: it means nothing for a device or FIFO, and a descriptor's
                // regular file (`> log` in a shell) belongs to the caller, who may have
                // written to it before us; appending is what a redirected stdout would do.
                std::fs::OpenOptions::new()
                    .write(true)
                    .append(append)
                    .open(p)
                    .map_err(io_err)?,
            ),
            Target::Stdout => Sink::Stdout(io::stdout()),
            Target::Stderr => Sink::Stderr(io::stderr()),
            #[cfg(unix)]
            Target::Socket(p) => {
                Sink::Socket(std::os::unix::net::UnixStream::connect(p).map_err(io_err)?)
            }
        };
        Ok(OutputFile {
            path: path.to_path_buf(),
            sink,
        })
    }

    /// Another handle to the same file, for writers that need a `File` (polars' batched writers).
    ///
    /// # Errors
    /// `Unsupported` for stdout, stderr and sockets, which have no `File`.
    pub(crate) fn try_clone_file(&self) -> io::Result<File> {
        match &self.sink {
            Sink::Replace { temp, .. } => temp.as_file().try_clone(),
            Sink::InPlace(f) => f.try_clone(),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this output is not a file",
            )),
        }
    }

    /// Flushes and, for a regular file, renames the temporary file over the target.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.flush().map_err(|e| Error::io(&self.path, e))?;
        match self.sink {
            Sink::Replace { temp, target } => {
                temp.persist(&target).map_err(|e| Error::io(&self.path, e))
            }
            _ => Ok(()),
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Replace { temp, .. } => temp.as_file_mut().write(buf),
            Sink::InPlace(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
            Sink::Stderr(s) => s.write(buf),
            #[cfg(unix)]
            Sink::Socket(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Replace { temp, .. } => temp.as_file_mut().flush(),
            Sink::InPlace(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
            Sink::Stderr(s) => s.flush(),
            #[cfg(unix)]
            Sink::Socket(s) => s.flush(),
        }
    }
}

/// How an output path is written.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A regular file or a new path, by its resolved location.
    Replace(PathBuf),
    /// Opened and written where it is; `append` for a descriptor's regular file.
    InPlace {
        path: PathBuf,
        append: bool,
    },
    /// This process's own stdout or stderr (`/dev/stdout`): written through the handle, which
    /// also works when the descriptor is a socket (a systemd service's journal) and cannot be
    /// opened by path.
    Stdout,
    Stderr,
    #[cfg(unix)]
    Socket(PathBuf),
}

impl Target {
    fn of(path: &Path) -> io::Result<Target> {
        let resolved = resolve(path)?;
        if let Some(fd) = descriptor(&resolved) {
            return Ok(match fd {
                Descriptor::Own(1) => Target::Stdout,
                Descriptor::Own(2) => Target::Stderr,
                _ => Target::InPlace {
                    append: std::fs::metadata(&resolved).is_ok_and(|m| m.is_file()),
                    path: resolved,
                },
            });
        }
        let meta = match std::fs::metadata(&resolved) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::Replace(resolved)),
            Err(e) => return Err(e),
        };
        let kind = meta.file_type();
        if kind.is_file() {
            return Ok(Target::Replace(resolved));
        }
        if kind.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory; give a file name",
            ));
        }
        #[cfg(unix)]
        if std::os::unix::fs::FileTypeExt::is_socket(&kind) {
            return Ok(Target::Socket(resolved));
        }
        Ok(Target::InPlace {
            path: resolved,
            append: false,
        })
    }
}

/// A path naming an open file descriptor rather than a place in a directory.
#[derive(Debug, PartialEq, Eq)]
enum Descriptor {
    /// One of this process's descriptors.
    Own(u32),
    Other,
}

/// `/dev/fd/N` (macOS, BSD) or `/proc/PID/fd/N` (Linux; `/proc/self` resolves to the pid), given
/// a path whose directories are resolved.
fn descriptor(path: &Path) -> Option<Descriptor> {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (pid, fd) = match parts.as_slice() {
        ["dev", "fd", fd] => (None, *fd),
        ["proc", pid, "fd", fd] => (Some(*pid), *fd),
        ["proc", ..] => return Some(Descriptor::Other),
        _ => return None,
    };
    let own = pid.is_none_or(|p| p == "self" || p == std::process::id().to_string());
    match fd.parse::<u32>() {
        Ok(n) if own => Some(Descriptor::Own(n)),
        _ => Some(Descriptor::Other),
    }
}

/// `path` made absolute with its symbolic links followed, up to a descriptor path (whose "link"
/// may name a pipe, not a file). The last component need not exist.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut p = std::path::absolute(path)?;
    // The kernel's own limit on links in one lookup (Linux MAXSYMLINKS).
    for _ in 0..40 {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return Ok(p);
        };
        // The directories may be links too (`/dev/fd` is `/proc/self/fd`).
        let parent = canonical_dir(parent);
        p = parent.join(name);
        if descriptor(&p).is_some() {
            return Ok(p);
        }
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => p = parent.join(std::fs::read_link(&p)?),
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// `dir` with its existing part canonicalised; a missing rest (created later, or reported
/// when the file is created) is kept as given.
fn canonical_dir(dir: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(dir) {
        return c;
    }
    match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) => canonical_dir(parent).join(name),
        _ => dir.to_path_buf(),
    }
}

/// The identity of an existing regular file (device and inode on Unix), whatever path names it.
#[derive(Debug, PartialEq, Eq)]
struct FileId(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        let m = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId((m.dev(), m.ino())))
        }
        #[cfg(not(unix))]
        {
            let _ = m;
            std::fs::canonicalize(path).ok().map(FileId)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) -> Result<()> {
        write_output(path, |w| w.write_all(text.as_bytes()))
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn regular_and_new_files_are_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.md");
        write(&p, "first").unwrap();
        write(&p, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second");
        assert_eq!(entries(dir.path()), ["report.md"]);
        // A failed render leaves the previous file and no temporary file.
        let failed = write_output(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("boom"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second");
        assert_eq!(entries(dir.path()), ["report.md"]);
    }

    #[cfg(unix)]
    #[test]
    fn existing_permissions_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("private.json");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        write(&p, "new").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.md");
        let link = dir.path().join("link.md");
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink("real.md", &link).unwrap();
        write(&link, "new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(entries(dir.path()), ["link.md", "real.md"]);
        // A dangling link creates its target.
        std::fs::remove_file(&real).unwrap();
        write(&link, "created").unwrap();
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "created");
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_stays_a_device() {
        use std::os::unix::fs::FileTypeExt;
        assert!(matches!(
            Target::of(Path::new("/dev/null")).unwrap(),
            Target::InPlace { append: false, .. }
        ));
        write(Path::new("/dev/null"), "nothing").unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(m.file_type().is_char_device());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stdout_paths_name_this_process_stdout() {
        for p in ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            assert_eq!(Target::of(Path::new(p)).unwrap(), Target::Stdout, "{p}");
        }
        assert_eq!(
            Target::of(Path::new("/dev/stderr")).unwrap(),
            Target::Stderr
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write(&fifo, "through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
        assert_eq!(entries(dir.path()), ["pipe"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_is_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut text = String::new();
            io::Read::read_to_string(&mut s, &mut text).unwrap();
            text
        });
        write(&path, "over a socket").unwrap();
        assert_eq!(reader.join().unwrap(), "over a socket");
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(dir.path(), "x").unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        assert!(entries(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn inputs_are_refused_through_links_but_devices_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("orders.csv");
        std::fs::write(&input, "a,b\n").unwrap();
        let link = dir.path().join("alias.csv");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let inputs = [input.clone()];
        assert!(matches!(
            refuse_inputs(&link, &inputs),
            Err(Error::OutputIsInput { .. })
        ));
        assert!(refuse_inputs(&dir.path().join("new.md"), &inputs).is_ok());
        let dev_null = [PathBuf::from("/dev/null")];
        assert!(refuse_inputs(Path::new("/dev/null"), &dev_null).is_ok());
        assert!(refuse_inputs(Path::new("/dev/stdout"), &[PathBuf::from("-")]).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn outputs_of_one_run_must_differ() {
        let is_table = crate::report::render::is_csv_table_file;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = d.join("report.md");
        let same = d.join("sub/../report.md");
        std::fs::create_dir(d.join("sub")).unwrap();
        let err = refuse_shared_outputs(&[("output", &out), ("rejects", &same)], None, is_table);
        assert!(
            matches!(&err, Err(Error::OutputsCollide { first, second, .. }) if first == "output" && second == "rejects"),
            "{err:?}"
        );
        let other = d.join("rejects.csv");
        assert!(
            refuse_shared_outputs(&[("output", &out), ("rejects", &other)], None, is_table).is_ok()
        );
        let null = Path::new("/dev/null");
        assert!(
            refuse_shared_outputs(&[("output", null), ("rejects", null)], None, is_table).is_ok()
        );
        // Inside the CSV directory, only a table's name collides.
        let tables = d.join("tables");
        let csv_dir = Some(("output_dir", tables.as_path()));
        let clash = tables.join("retention_periods.csv");
        let err = refuse_shared_outputs(&[("rejects", &clash)], csv_dir, is_table);
        assert!(matches!(err, Err(Error::OutputsCollide { .. })), "{err:?}");
        let fine = tables.join("rejects.csv");
        assert!(refuse_shared_outputs(&[("rejects", &fine)], csv_dir, is_table).is_ok());
    }
}
