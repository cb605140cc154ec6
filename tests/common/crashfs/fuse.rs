//! The FUSE side of the crash file system: kernel requests turned into steps of the model.

use std::{
    collections::BTreeMap,
    ffi::{OsStr, OsString},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};

use super::{
    OpKind,
    model::{Content, State, lock},
};

/// Attributes and names are never cached by the kernel: every stat sees the journaled state.
const NO_CACHE: Duration = Duration::ZERO;
/// Free space reported by `statfs` (4 KiB blocks): plenty, so `MIN_FREE_BYTES` never triggers.
const FREE_BLOCKS: u64 = 1 << 24;

/// The FUSE side: requests turned into changes of the shared state.
pub(super) struct Journaled(pub(super) Arc<Mutex<State>>);

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
