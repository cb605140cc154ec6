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

use std::{
    collections::{BTreeMap, HashMap},
    ffi::{OsStr, OsString},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// Attributes and names are never cached by the kernel: every stat sees the journaled state.
const NO_CACHE: Duration = Duration::ZERO;
/// Free space reported by `statfs` (4 KiB blocks): plenty, so `MIN_FREE_BYTES` never triggers.
const FREE_BLOCKS: u64 = 1 << 24;

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

#[derive(Debug)]
enum Content {
    File { data: Vec<u8>, durable: Vec<u8> },
    Folder { entries: BTreeMap<OsString, u64>, durable: BTreeMap<OsString, u64> },
}

#[derive(Debug)]
struct Node {
    content: Content,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
    /// Where it was last linked, for journal paths.
    parent: u64,
    name: OsString,
}

impl Node {
    fn new(content: Content, perm: u16, (uid, gid): (u32, u32), parent: u64, name: &OsStr) -> Self {
        Self { content, perm, uid, gid, mtime: SystemTime::now(), parent, name: name.to_owned() }
    }

    fn attr(&self, ino: u64) -> FileAttr {
        let (kind, size, nlink) = match &self.content {
            Content::File { data, .. } => (FileType::RegularFile, data.len() as u64, 1),
            Content::Folder { .. } => (FileType::Directory, 0, 2),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.mtime,
            mtime: self.mtime,
            ctime: self.mtime,
            crtime: self.mtime,
            kind,
            perm: self.perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

#[derive(Debug)]
struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    journal: Vec<Op>,
    /// Set by the power cut: every later change fails.
    cut: bool,
}

impl State {
    fn node(&self, ino: INodeNo) -> Result<&Node, Errno> {
        self.nodes.get(&ino.0).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: INodeNo) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)
    }

    fn entries(&self, folder: INodeNo) -> Result<&BTreeMap<OsString, u64>, Errno> {
        match &self.node(folder)?.content {
            Content::Folder { entries, .. } => Ok(entries),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, folder: INodeNo) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match &mut self.node_mut(folder)?.content {
            Content::Folder { entries, .. } => Ok(entries),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn child(&self, folder: INodeNo, name: &OsStr) -> Result<u64, Errno> {
        self.entries(folder)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    fn path(&self, ino: u64) -> PathBuf {
        let mut parts = Vec::new();
        let mut at = ino;
        while at != INodeNo::ROOT.0 {
            let Some(node) = self.nodes.get(&at) else { break };
            parts.push(node.name.clone());
            at = node.parent;
        }
        parts.iter().rev().collect()
    }

    fn log(&mut self, kind: OpKind, ino: u64, offset: u64, len: u64) {
        let path = self.path(ino);
        self.journal.push(Op { at: Instant::now(), kind, path, offset, len });
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.cut { Err(Errno::EIO) } else { Ok(()) }
    }

    /// Links a new node under `parent` as `name`.
    fn add(
        &mut self,
        parent: INodeNo,
        name: &OsStr,
        content: Content,
        perm: u16,
        owner: (u32, u32),
    ) -> Result<u64, Errno> {
        self.writable()?;
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::new(content, perm, owner, parent.0, name));
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        self.log(OpKind::Create, ino, 0, 0);
        Ok(ino)
    }

    fn write(&mut self, ino: INodeNo, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        let node = self.node_mut(ino)?;
        let Content::File { data, .. } = &mut node.content else { return Err(Errno::EISDIR) };
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = start + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        node.mtime = SystemTime::now();
        self.log(OpKind::Write, ino.0, offset, bytes.len() as u64);
        Ok(())
    }

    fn truncate(&mut self, ino: INodeNo, size: u64) -> Result<(), Errno> {
        self.writable()?;
        let node = self.node_mut(ino)?;
        let Content::File { data, .. } = &mut node.content else { return Err(Errno::EISDIR) };
        data.resize(usize::try_from(size).map_err(|_| Errno::EFBIG)?, 0);
        node.mtime = SystemTime::now();
        self.log(OpKind::Truncate, ino.0, size, 0);
        Ok(())
    }

    /// What a sync of `ino` makes durable: a file's bytes, a folder's entries.
    fn sync(&mut self, ino: INodeNo, kind: OpKind) -> Result<(), Errno> {
        self.writable()?;
        match &mut self.node_mut(ino)?.content {
            Content::File { data, durable } => durable.clone_from(data),
            Content::Folder { entries, durable } => durable.clone_from(entries),
        }
        self.log(kind, ino.0, 0, 0);
        Ok(())
    }

    fn unlink(&mut self, parent: INodeNo, name: &OsStr, folder: bool) -> Result<(), Errno> {
        self.writable()?;
        let ino = self.child(parent, name)?;
        match (&self.nodes[&ino].content, folder) {
            (Content::Folder { entries, .. }, true) if !entries.is_empty() => return Err(Errno::ENOTEMPTY),
            (Content::Folder { .. }, false) => return Err(Errno::EISDIR),
            (Content::File { .. }, true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        self.log(OpKind::Unlink, ino, 0, 0);
        self.entries_mut(parent)?.remove(name);
        Ok(())
    }

    fn rename(&mut self, from: (INodeNo, &OsStr), to: (INodeNo, &OsStr), flags: RenameFlags) -> Result<(), Errno> {
        self.writable()?;
        let ino = self.child(from.0, from.1)?;
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return Err(Errno::EINVAL);
        }
        if let Ok(existing) = self.child(to.0, to.1) {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if matches!(&self.nodes[&existing].content, Content::Folder { entries, .. } if !entries.is_empty()) {
                return Err(Errno::ENOTEMPTY);
            }
        }
        self.entries_mut(from.0)?.remove(from.1);
        self.entries_mut(to.0)?.insert(to.1.to_owned(), ino);
        let node = self.node_mut(INodeNo(ino))?;
        (node.parent, node.name) = (to.0.0, to.1.to_owned());
        self.log(OpKind::Rename, ino, 0, 0);
        Ok(())
    }

    /// The durable tree under `folder`.
    fn durable_tree(&self, folder: u64) -> BTreeMap<OsString, Entry> {
        let Some(Content::Folder { durable, .. }) = self.nodes.get(&folder).map(|n| &n.content) else {
            return BTreeMap::new();
        };
        let entry = |ino: u64| match &self.nodes[&ino].content {
            Content::File { durable, .. } => Entry::File(durable.clone()),
            Content::Folder { .. } => Entry::Folder(self.durable_tree(ino)),
        };
        durable.iter().map(|(name, ino)| (name.clone(), entry(*ino))).collect()
    }
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

/// The FUSE side: requests turned into changes of the shared state.
struct Journaled(Arc<Mutex<State>>);

impl Journaled {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.0)
    }

    fn entry_reply(&self, result: Result<u64, Errno>, reply: ReplyEntry) {
        let state = self.state();
        match result.and_then(|ino| Ok(state.node(INodeNo(ino))?.attr(ino))) {
            Ok(attr) => reply.entry(&NO_CACHE, &attr, Generation(0)),
            Err(errno) => reply.error(errno),
        }
    }

    fn attr_reply(&self, result: Result<(), Errno>, ino: INodeNo, reply: ReplyAttr) {
        let state = self.state();
        match result.and_then(|()| Ok(state.node(ino)?.attr(ino.0))) {
            Ok(attr) => reply.attr(&NO_CACHE, &attr),
            Err(errno) => reply.error(errno),
        }
    }
}

/// The state stays consistent whatever panicked while holding it: each change is one step.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn empty_reply(result: Result<(), Errno>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(errno) => reply.error(errno),
    }
}

fn permissions(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

impl Filesystem for Journaled {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.state().child(parent, name);
        self.entry_reply(found, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.attr_reply(Ok(()), ino, reply);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = (|| {
            let mut state = self.state();
            if let Some(size) = size {
                state.truncate(ino, size)?;
            }
            let node = state.node_mut(ino)?;
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            match mtime {
                Some(TimeOrNow::SpecificTime(at)) => node.mtime = at,
                Some(TimeOrNow::Now) => node.mtime = SystemTime::now(),
                None => {}
            }
            Ok(())
        })();
        self.attr_reply(result, ino, reply);
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let folder = Content::Folder { entries: BTreeMap::new(), durable: BTreeMap::new() };
        let added = self.state().add(parent, name, folder, permissions(mode, umask), (req.uid(), req.gid()));
        self.entry_reply(added, reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let file = Content::File { data: Vec::new(), durable: Vec::new() };
        let mut state = self.state();
        let added = state.add(parent, name, file, permissions(mode, umask), (req.uid(), req.gid()));
        match added.and_then(|ino| Ok(state.node(INodeNo(ino))?.attr(ino))) {
            Ok(attr) => reply.created(&NO_CACHE, &attr, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(errno) => reply.error(errno),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty_reply(self.state().unlink(parent, name, false), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty_reply(self.state().unlink(parent, name, true), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty_reply(self.state().rename((parent, name), (newparent, newname), flags), reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().node(ino) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(errno) => reply.error(errno),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.state();
        match state.node(ino).map(|node| &node.content) {
            Ok(Content::File { data, .. }) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
                let end = start.saturating_add(size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Ok(Content::Folder { .. }) => reply.error(Errno::EISDIR),
            Err(errno) => reply.error(errno),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.state().write(ino, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(errno) => reply.error(errno),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let kind = if datasync { OpKind::Fdatasync } else { OpKind::Fsync };
        empty_reply(self.state().sync(ino, kind), reply);
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let state = self.state();
        let entries = match state.entries(ino) {
            Ok(entries) => entries,
            Err(errno) => return reply.error(errno),
        };
        let dots = [(OsString::from("."), ino.0), (OsString::from(".."), ino.0)];
        let all = dots.into_iter().chain(entries.iter().map(|(name, ino)| (name.clone(), *ino)));
        for (position, (name, child)) in all.enumerate().skip(offset as usize) {
            let kind = match state.nodes.get(&child).map(|node| &node.content) {
                Some(Content::Folder { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            if reply.add(INodeNo(child), position as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        empty_reply(self.state().sync(ino, OpKind::SyncFolder), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(FREE_BLOCKS, FREE_BLOCKS, FREE_BLOCKS, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
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
        let root = Node::new(
            Content::Folder { entries: BTreeMap::new(), durable: BTreeMap::new() },
            0o755,
            owner,
            INodeNo::ROOT.0,
            OsStr::new(""),
        );
        let state = State {
            nodes: HashMap::from([(INodeNo::ROOT.0, root)]),
            next_ino: INodeNo::ROOT.0 + 1,
            journal: Vec::new(),
            cut: false,
        };
        let state = Arc::new(Mutex::new(state));
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
        let mut state = lock(&self.state);
        state.cut = true;
        Image { root: state.durable_tree(INodeNo::ROOT.0) }
    }

    /// Every change so far, in order.
    pub fn journal(&self) -> Vec<Op> {
        lock(&self.state).journal.clone()
    }
}

impl Drop for CrashFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}
