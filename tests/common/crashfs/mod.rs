//! A file system in memory, mounted through FUSE, that knows what a power cut would leave.
//!
//! Every change the recorder makes goes through it and is journaled (write, truncate, create,
//! rename, unlink, fsync, fdatasync, the sync of a folder) with its time. Beside what a file or a
//! folder holds now, it keeps what the disk holds for sure: the bytes of a file as of its last
//! `fsync`/`fdatasync`, the entries of a folder as of its last sync. That is the model of a power
//! cut: nothing written reaches the disk unless a sync covered it, and a new name (a created
//! or renamed file) survives only once its folder was synced. [`CrashFs::power_cut`] freezes it
//! and returns that durable state as an [`Image`] to write into a real folder.
//!
//! The model is strict on purpose: a real disk may keep more (the kernel writes dirty pages back
//! on its own), never less. FUSE without a writeback cache (fuser asks for none) hands every
//! `write` to this process before the call returns, so the journal order is the program's order.

mod fuse;
mod model;

use std::{
    collections::BTreeMap,
    ffi::OsString,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Instant,
};

use self::{
    fuse::Journaled,
    model::{State, lock},
};

/// What a journal entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Bytes written at an offset.
    Write,
    /// The size set (`ftruncate`, `O_TRUNC`).
    Truncate,
    /// A file or folder created.
    Create,
    /// A name moved (`rename`).
    Rename,
    /// A name removed.
    Unlink,
    /// `fsync` of a file.
    Fsync,
    /// `fdatasync` of a file.
    Fdatasync,
    /// `fsync` of a folder: its entries are durable.
    SyncFolder,
}

/// One journaled change.
#[derive(Debug, Clone)]
pub struct Op {
    /// When it reached the file system.
    pub at: Instant,
    /// What it did.
    pub kind: OpKind,
    /// The file or folder, relative to the mount point (its name at that time).
    pub path: PathBuf,
    /// Offset of a write; new size of a truncate.
    pub offset: u64,
    /// Bytes written.
    pub len: u64,
}

/// A file or folder of a power-cut image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file and the bytes it keeps.
    File(Vec<u8>),
    /// A folder and what it keeps.
    Folder(BTreeMap<OsString, Entry>),
}

/// What the disk holds after a power cut: the tree under the mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The mount point's entries.
    pub root: BTreeMap<OsString, Entry>,
}

impl Image {
    /// Writes the image into `dir` (created if missing).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        write_tree(&self.root, dir)
    }
}

fn write_tree(entries: &BTreeMap<OsString, Entry>, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, entry) in entries {
        match entry {
            Entry::File(bytes) => std::fs::write(dir.join(name), bytes)?,
            Entry::Folder(children) => write_tree(children, &dir.join(name))?,
        }
    }
    Ok(())
}

/// The mounted file system; unmounted when dropped.
pub struct CrashFs {
    state: Arc<Mutex<State>>,
    mount_point: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl CrashFs {
    /// Mounts an empty file system on `mount_point` (an existing, empty folder; needs root).
    pub fn mount(mount_point: &Path) -> std::io::Result<Self> {
        let owner = std::fs::metadata(mount_point).map(|m| (m.uid(), m.gid()))?;
        let state = Arc::new(Mutex::new(State::new(owner)));
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("crashfs".into()), fuser::MountOption::RW];
        let session = fuser::spawn_mount(Journaled(Arc::clone(&state)), mount_point, &config)?;
        Ok(Self { state, mount_point: mount_point.to_owned(), session: Some(session) })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Cuts the power: from now on every change fails, and the result is what the disk keeps.
    pub fn power_cut(&self) -> Image {
        Image { root: lock(&self.state).cut() }
    }

    /// Every change so far, in order.
    pub fn journal(&self) -> Vec<Op> {
        lock(&self.state).journal().to_vec()
    }
}

impl Drop for CrashFs {
    fn drop(&mut self) {
        // A process still inside (a recorder a failed test left running) makes the unmount
        // fail: detach it then, so no mount outlives the test.
        if let Some(session) = self.session.take()
            && session.umount_and_join().is_err()
        {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.mount_point).status();
        }
    }
}
