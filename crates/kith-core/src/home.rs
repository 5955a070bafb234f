//! The profile's directory: created private (0700, files 0600), and owned
//! by one process at a time through an exclusive lock on `kith.lock`.
//!
//! The lock is what keeps two `kith` processes from interleaving MLS state
//! (pair-v1.md §12): a second process waits a few seconds for the owner to
//! finish, then gives up with one line. `watch` lets go of the lock while
//! it waits for pushes, so `send` in another terminal still works.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{CoreError, Result};

const DB_FILE: &str = "kith.db";
const LOCK_FILE: &str = "kith.lock";
/// A running `watch` listens here (a Unix datagram socket) to hear that
/// another process changed the profile (accepted an invitation, say), so
/// that it subscribes to new channels at once instead of polling.
const WATCH_SOCKET: &str = "kith.watch";
/// How often a process waiting for the lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// The database file of the profile in `home`.
pub(crate) fn db_path(home: &Path) -> PathBuf {
    home.join(DB_FILE)
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> CoreError {
    move |source| CoreError::Io { context, source }
}

/// Creates `home` (private to this user) if it is missing.
pub(crate) fn create(home: &Path) -> Result<()> {
    if home.exists() && !home.is_dir() {
        return Err(CoreError::NotADirectory(home.display().to_string()));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(home)
        .map_err(io(format!("cannot create {}", home.display())))?;
    make_private(home)
}

/// Restricts `home` and every file in it to this user: the database holds
/// identity secrets and MLS state (pair-v1.md §12, data at rest).
pub(crate) fn make_private(home: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(io(format!("cannot restrict {}", path.display())))
        };
        set(home, 0o700)?;
        let entries =
            std::fs::read_dir(home).map_err(io(format!("cannot read {}", home.display())))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                set(&entry.path(), 0o600)?;
            }
        }
    }
    Ok(())
}

/// Creates the database file empty and private before SQLite opens it, so
/// that it (and the WAL beside it, which takes its mode) is never readable
/// by others, not even for a moment.
pub(crate) fn create_db_file(home: &Path) -> Result<()> {
    let path = db_path(home);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&path)
        .map_err(io(format!("cannot create {}", path.display())))?;
    Ok(())
}

/// Where a running `watch` of the profile in `home` listens.
pub(crate) fn watch_socket(home: &Path) -> PathBuf {
    home.join(WATCH_SOCKET)
}

/// Tells a `watch` of this profile, if one runs, that the profile changed.
/// Best effort: nothing waits, nothing fails.
pub(crate) fn poke_watch(home: &Path) {
    #[cfg(unix)]
    {
        let path = watch_socket(home);
        if path.exists()
            && let Ok(socket) = std::os::unix::net::UnixDatagram::unbound()
        {
            let _ = socket.set_nonblocking(true);
            let _ = socket.send_to(&[1], &path);
        }
    }
}

/// The exclusive lock on a profile. Dropping it (or the process ending,
/// however it ends) lets go of it.
#[derive(Debug)]
pub(crate) struct ProfileLock {
    file: File,
    home: PathBuf,
}

impl ProfileLock {
    /// Takes the lock, waiting up to `wait` for another process to let go.
    pub(crate) async fn acquire(home: &Path, wait: Duration) -> Result<Self> {
        let path = home.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(io(format!("cannot open {}", path.display())))?;
        let lock = Self {
            file,
            home: home.to_path_buf(),
        };
        lock.relock(wait).await?;
        Ok(lock)
    }

    /// Takes the lock again after [`ProfileLock::release`].
    pub(crate) async fn relock(&self, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            match self.file.try_lock() {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(CoreError::ProfileBusy(self.home.display().to_string()));
                }
                Err(TryLockError::Error(source)) => {
                    return Err(CoreError::Io {
                        context: format!("cannot lock {}", self.home.display()),
                        source,
                    });
                }
            }
        }
    }

    /// Lets another process use the profile until [`ProfileLock::relock`].
    pub(crate) fn release(&self) {
        // Unlocking a lock we hold cannot fail in a way we could act on;
        // the next relock reports any real problem.
        let _ = self.file.unlock();
    }
}
