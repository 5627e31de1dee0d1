//! Where outputs go: every command writes through here so that an output
//! path never destroys what is not ours. A symlink is followed (its target
//! is replaced, the link stays), a character device or FIFO is written
//! straight through (no rename over `/dev/null`), anything else that is
//! not a regular file is refused, and an output that is one of the inputs
//! is refused before any work starts.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// What an output path leads to, after following symlinks.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A regular file, or nothing yet: replace it atomically at this path.
    File(PathBuf),
    /// A character device or FIFO: write to it directly.
    Stream(PathBuf),
    /// An existing directory.
    Dir(PathBuf),
}

/// Follows `path` through any symlinks to what it names.
pub fn resolve(path: &Path) -> Result<Target> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        let md = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::File(p)),
            Err(e) => bail!("{}: {e}", path.display()),
        };
        let t = md.file_type();
        if t.is_symlink() {
            let to = fs::read_link(&p).with_context(|| path.display().to_string())?;
            p = match p.parent() {
                Some(d) if to.is_relative() => d.join(to),
                _ => to,
            };
        } else if t.is_file() {
            return Ok(Target::File(p));
        } else if t.is_dir() {
            return Ok(Target::Dir(p));
        } else if t.is_char_device() || t.is_fifo() {
            return Ok(Target::Stream(p));
        } else {
            let what = if t.is_block_device() {
                "a block device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            };
            bail!(
                "{}: refusing to write an output over {what}",
                path.display()
            );
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

/// Writes `bytes` to the output `path` so that readers see the old content
/// or the new, never half (see the module comment for non-regular files).
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    match resolve(path)? {
        Target::File(p) => write_atomic_at(&p, path, bytes),
        Target::Stream(p) => {
            let r = fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .and_then(|mut f| f.write_all(bytes));
            r.map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
        }
        Target::Dir(_) => bail!("{}: is a directory, expected a file path", path.display()),
    }
}

/// Atomic replace of the regular file `at` (`shown` is the path the user
/// gave, for errors).
fn write_atomic_at(at: &Path, shown: &Path, bytes: &[u8]) -> Result<()> {
    let dir = at
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let name = at
        .file_name()
        .with_context(|| format!("{} has no file name", shown.display()))?
        .to_string_lossy()
        .into_owned();
    remove_stale_temps(dir, &name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, at)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| anyhow::anyhow!("writing {}: {e}", shown.display()))
}

/// Whether process `pid` still runs (it may own a temporary file).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists as another user's.
    // SAFETY: kill with signal 0 sends nothing.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// Removes `.NAME.tmp-PID[-…]` entries in `dir` that a killed run of ours
/// left behind (their PID no longer runs). Best effort: failures are
/// ignored, the next write replaces the output all the same.
pub fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let f = e.file_name();
        let Some(rest) = f.to_str().and_then(|s| s.strip_prefix(&prefix)) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || pid_alive(pid) {
            continue;
        }
        let p = e.path();
        let _ = match e.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
            _ => fs::remove_file(&p),
        };
    }
}

/// Fails, naming both paths, when `output` is the same file as an input or
/// as any file inside an input directory. Call before doing any work.
pub fn check_not_input(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(out) = fs::metadata(output) else {
        return Ok(()); // nothing there yet: it cannot be an input
    };
    if !out.is_file() {
        return Ok(()); // devices, FIFOs: written through, never read back
    }
    let id = (out.dev(), out.ino());
    for i in inputs {
        if let Some(same) = find_same(i, id, 0) {
            if same == *i {
                bail!(
                    "output {} is the input {}: refusing to overwrite what is being read",
                    output.display(),
                    i.display()
                );
            }
            bail!(
                "output {} is the input {} (inside {}): refusing to overwrite what is being read",
                output.display(),
                same.display(),
                i.display()
            );
        }
    }
    Ok(())
}

fn find_same(p: &Path, id: (u64, u64), depth: usize) -> Option<PathBuf> {
    let md = fs::metadata(p).ok()?;
    if (md.dev(), md.ino()) == id {
        return Some(p.to_path_buf());
    }
    if md.is_dir() && depth < 32 {
        for e in fs::read_dir(p).ok()?.flatten() {
            if let Some(f) = find_same(&e.path(), id, depth + 1) {
                return Some(f);
            }
        }
    }
    None
}

/// Fails, naming the path, when `output` cannot be written: a directory
/// where a file is wanted, a parent that is not a directory or not
/// writable. Lets a command refuse before hours of work, not after.
pub fn check_writable(output: &Path) -> Result<()> {
    match resolve(output)? {
        Target::Dir(_) => bail!("{}: is a directory, expected a file path", output.display()),
        // Opening a FIFO would wait for its reader: it is checked when written.
        Target::Stream(_) => Ok(()),
        Target::File(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            creatable_in(output, dir)
        }
    }
}

/// Like [`check_writable`] for an output directory (a report directory):
/// it may exist as a directory, or be creatable.
pub fn check_dir_writable(output: &Path) -> Result<()> {
    match resolve(output)? {
        Target::Dir(p) => creatable_in(output, &p),
        Target::File(p) if p.exists() => {
            bail!("{}: exists and is not a directory", output.display())
        }
        Target::Stream(_) => bail!("{}: exists and is not a directory", output.display()),
        Target::File(p) => creatable_in(output, &p),
    }
}

/// Checks that `dir`, or its first existing ancestor (create_dir_all makes
/// the rest), is a directory this process may create entries in.
fn creatable_in(output: &Path, dir: &Path) -> Result<()> {
    let mut dir = dir.to_path_buf();
    loop {
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => bail!("{}: {} is not a directory", output.display(), dir.display()),
            Err(_) => match dir.parent() {
                Some(d) if !d.as_os_str().is_empty() => dir = d.to_path_buf(),
                _ => {
                    dir = PathBuf::from(".");
                    break;
                }
            },
        }
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .with_context(|| output.display().to_string())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        bail!(
            "{}: cannot write in {}: {}",
            output.display(),
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The checks every command runs on a file output before its work:
/// writable, and none of `inputs` (files or directories searched).
pub fn check_file_output<'a>(
    output: &Path,
    inputs: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<()> {
    let inputs: Vec<PathBuf> = inputs.into_iter().cloned().collect();
    check_not_input(output, &inputs)?;
    check_writable(output)
}
