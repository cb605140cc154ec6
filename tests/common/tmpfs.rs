//! A small tmpfs mounted for one test (tests run as root), to fill a disk or make it read-only
//! on purpose. Unmounted when dropped, even when the test fails.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A mounted tmpfs.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `3m`) on a fresh folder.
    pub fn mount(test: &str, size: &str) -> Self {
        let dir = crate::temp_dir(&format!("tmpfs-{test}"));
        run("mount", &["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs", &dir.display().to_string()]);
        Self { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Remounts it read-only (`true`) or read-write.
    pub fn set_read_only(dir: &Path, read_only: bool) {
        let mode = if read_only { "remount,ro" } else { "remount,rw" };
        run("mount", &["-o", mode, &dir.display().to_string()]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed (tests run as root): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
