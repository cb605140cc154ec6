//! The power-cut model: what each file and folder holds now, and what the disk holds for sure
//! (a file's bytes as of its last sync, a folder's entries as of its last sync), changed one
//! journaled step at a time.

use std::{
    collections::{BTreeMap, HashMap},
    ffi::{OsStr, OsString},
    path::PathBuf,
    sync::{Mutex, MutexGuard},
    time::{Instant, SystemTime},
};

use fuser::{Errno, FileAttr, FileType, INodeNo, RenameFlags};

use super::{Entry, Op, OpKind};

#[derive(Debug)]
pub(super) enum Content {
    File { data: Vec<u8>, durable: Vec<u8> },
    Folder { entries: BTreeMap<OsString, u64>, durable: BTreeMap<OsString, u64> },
}

#[derive(Debug)]
pub(super) struct Node {
    pub(super) content: Content,
    pub(super) perm: u16,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: SystemTime,
    /// Where it was last linked, for journal paths.
    pub(super) parent: u64,
    pub(super) name: OsString,
}

impl Node {
    pub(super) fn new(content: Content, perm: u16, (uid, gid): (u32, u32), parent: u64, name: &OsStr) -> Self {
        Self { content, perm, uid, gid, mtime: SystemTime::now(), parent, name: name.to_owned() }
    }

    pub(super) fn attr(&self, ino: u64) -> FileAttr {
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
pub(super) struct State {
    pub(super) nodes: HashMap<u64, Node>,
    pub(super) next_ino: u64,
    pub(super) journal: Vec<Op>,
    /// Set by the power cut: every later change fails.
    pub(super) cut: bool,
}

impl State {
    /// An empty file system whose root belongs to `owner` (uid, gid).
    pub(super) fn new(owner: (u32, u32)) -> Self {
        let folder = Content::Folder { entries: BTreeMap::new(), durable: BTreeMap::new() };
        let root = Node::new(folder, 0o755, owner, INodeNo::ROOT.0, OsStr::new(""));
        Self {
            nodes: HashMap::from([(INodeNo::ROOT.0, root)]),
            next_ino: INodeNo::ROOT.0 + 1,
            journal: Vec::new(),
            cut: false,
        }
    }

    /// Cuts the power: every later change fails; returns what the disk keeps.
    pub(super) fn cut(&mut self) -> BTreeMap<OsString, Entry> {
        self.cut = true;
        self.durable_tree(INodeNo::ROOT.0)
    }

    /// Every change so far, in order.
    pub(super) fn journal(&self) -> &[Op] {
        &self.journal
    }

    pub(super) fn node(&self, ino: INodeNo) -> Result<&Node, Errno> {
        self.nodes.get(&ino.0).ok_or(Errno::ENOENT)
    }

    pub(super) fn node_mut(&mut self, ino: INodeNo) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)
    }

    pub(super) fn entries(&self, folder: INodeNo) -> Result<&BTreeMap<OsString, u64>, Errno> {
        match &self.node(folder)?.content {
            Content::Folder { entries, .. } => Ok(entries),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    pub(super) fn entries_mut(&mut self, folder: INodeNo) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match &mut self.node_mut(folder)?.content {
            Content::Folder { entries, .. } => Ok(entries),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    pub(super) fn child(&self, folder: INodeNo, name: &OsStr) -> Result<u64, Errno> {
        self.entries(folder)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    pub(super) fn path(&self, ino: u64) -> PathBuf {
        let mut parts = Vec::new();
        let mut at = ino;
        while at != INodeNo::ROOT.0 {
            let Some(node) = self.nodes.get(&at) else { break };
            parts.push(node.name.clone());
            at = node.parent;
        }
        parts.iter().rev().collect()
    }

    pub(super) fn log(&mut self, kind: OpKind, ino: u64, offset: u64, len: u64) {
        let path = self.path(ino);
        self.journal.push(Op { at: Instant::now(), kind, path, offset, len });
    }

    pub(super) fn writable(&self) -> Result<(), Errno> {
        if self.cut { Err(Errno::EIO) } else { Ok(()) }
    }

    /// Links a new node under `parent` as `name`.
    pub(super) fn add(
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

    pub(super) fn write(&mut self, ino: INodeNo, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
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

    pub(super) fn truncate(&mut self, ino: INodeNo, size: u64) -> Result<(), Errno> {
        self.writable()?;
        let node = self.node_mut(ino)?;
        let Content::File { data, .. } = &mut node.content else { return Err(Errno::EISDIR) };
        data.resize(usize::try_from(size).map_err(|_| Errno::EFBIG)?, 0);
        node.mtime = SystemTime::now();
        self.log(OpKind::Truncate, ino.0, size, 0);
        Ok(())
    }

    /// What a sync of `ino` makes durable: a file's bytes, a folder's entries.
    pub(super) fn sync(&mut self, ino: INodeNo, kind: OpKind) -> Result<(), Errno> {
        self.writable()?;
        match &mut self.node_mut(ino)?.content {
            Content::File { data, durable } => durable.clone_from(data),
            Content::Folder { entries, durable } => durable.clone_from(entries),
        }
        self.log(kind, ino.0, 0, 0);
        Ok(())
    }

    pub(super) fn unlink(&mut self, parent: INodeNo, name: &OsStr, folder: bool) -> Result<(), Errno> {
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

    pub(super) fn rename(
        &mut self,
        from: (INodeNo, &OsStr),
        to: (INodeNo, &OsStr),
        flags: RenameFlags,
    ) -> Result<(), Errno> {
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
    pub(super) fn durable_tree(&self, folder: u64) -> BTreeMap<OsString, Entry> {
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

/// The state stays consistent whatever panicked while holding it: each change is one step.
pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: INodeNo = INodeNo::ROOT;

    fn file(state: &mut State, parent: INodeNo, name: &str) -> INodeNo {
        let content = Content::File { data: Vec::new(), durable: Vec::new() };
        INodeNo(state.add(parent, OsStr::new(name), content, 0o644, (0, 0)).unwrap())
    }

    fn kept(state: &mut State) -> Vec<(String, Vec<u8>)> {
        let tree = state.cut();
        let flat = |(name, entry): (OsString, Entry)| match entry {
            Entry::File(bytes) => (name.to_string_lossy().into_owned(), bytes),
            Entry::Folder(_) => (name.to_string_lossy().into_owned(), b"<folder>".to_vec()),
        };
        tree.into_iter().map(flat).collect()
    }

    #[test]
    fn only_synced_bytes_under_synced_names_survive() {
        let mut state = State::new((0, 0));
        let video = file(&mut state, ROOT, "video");
        state.write(video, 0, b"fragment 1;").unwrap();
        state.sync(video, OpKind::Fdatasync).unwrap();
        state.sync(ROOT, OpKind::SyncFolder).unwrap();
        state.write(video, 11, b"fragment 2;").unwrap();
        let late = file(&mut state, ROOT, "late");
        state.sync(late, OpKind::Fsync).unwrap();
        assert_eq!(kept(&mut state), [("video".to_owned(), b"fragment 1;".to_vec())]);
        assert_eq!(state.write(video, 0, b"x"), Err(Errno::EIO), "nothing changes after the cut");
    }

    #[test]
    fn a_rename_or_an_unlink_counts_once_the_folder_is_synced() {
        let mut state = State::new((0, 0));
        let old = file(&mut state, ROOT, "manifest");
        state.write(old, 0, b"old").unwrap();
        state.sync(old, OpKind::Fsync).unwrap();
        file(&mut state, ROOT, "gone");
        state.sync(ROOT, OpKind::SyncFolder).unwrap();
        let new = file(&mut state, ROOT, ".manifest.tmp");
        state.write(new, 0, b"new").unwrap();
        state.sync(new, OpKind::Fsync).unwrap();
        state
            .rename((ROOT, OsStr::new(".manifest.tmp")), (ROOT, OsStr::new("manifest")), RenameFlags::empty())
            .unwrap();
        state.unlink(ROOT, OsStr::new("gone"), false).unwrap();
        assert_eq!(state.child(ROOT, OsStr::new("gone")), Err(Errno::ENOENT), "gone now");
        let before_sync = state.durable_tree(ROOT.0);
        assert_eq!(before_sync.get(OsStr::new("manifest")), Some(&Entry::File(b"old".to_vec())));
        assert!(before_sync.contains_key(OsStr::new("gone")), "an unlink is not durable before the folder sync");
        state.sync(ROOT, OpKind::SyncFolder).unwrap();
        assert_eq!(kept(&mut state), [("manifest".to_owned(), b"new".to_vec())]);
    }

    #[test]
    fn a_truncate_is_a_change_like_a_write() {
        let mut state = State::new((0, 0));
        let index = file(&mut state, ROOT, "index");
        state.write(index, 0, b"header\nrow\n").unwrap();
        state.sync(index, OpKind::Fdatasync).unwrap();
        state.sync(ROOT, OpKind::SyncFolder).unwrap();
        state.truncate(index, 7).unwrap();
        assert_eq!(kept(&mut state), [("index".to_owned(), b"header\nrow\n".to_vec())]);
        let kinds: Vec<OpKind> = state.journal().iter().map(|op| op.kind).collect();
        assert_eq!(
            kinds,
            [OpKind::Create, OpKind::Write, OpKind::Fdatasync, OpKind::SyncFolder, OpKind::Truncate],
            "every change journaled in order"
        );
    }

    #[test]
    fn folder_rules_hold() {
        let mut state = State::new((0, 0));
        let folder = Content::Folder { entries: BTreeMap::new(), durable: BTreeMap::new() };
        let sub = INodeNo(state.add(ROOT, OsStr::new("sub"), folder, 0o755, (0, 0)).unwrap());
        file(&mut state, sub, "f");
        assert_eq!(state.unlink(ROOT, OsStr::new("sub"), true), Err(Errno::ENOTEMPTY));
        assert_eq!(state.unlink(ROOT, OsStr::new("sub"), false), Err(Errno::EISDIR));
        let exists = Content::File { data: Vec::new(), durable: Vec::new() };
        assert_eq!(state.add(sub, OsStr::new("f"), exists, 0o644, (0, 0)), Err(Errno::EEXIST));
        let noreplace = RenameFlags::RENAME_NOREPLACE;
        file(&mut state, sub, "g");
        assert_eq!(state.rename((sub, OsStr::new("g")), (sub, OsStr::new("f")), noreplace), Err(Errno::EEXIST));
        assert_eq!(state.path(state.child(sub, OsStr::new("f")).unwrap()), PathBuf::from("sub/f"));
    }
}
