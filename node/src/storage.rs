//! The storage folder at startup: proves it takes a file, and repairs what a crashed run left
//! in it (see [`crate::recovery`]).

use std::path::Path;

use eyre::WrapErr;

use crate::recovery::{Recovered, recover_storage};

/// Checks `STORAGE` and repairs crash leftovers in it; an error stops the node with one clear
/// message.
pub fn prepare_storage(storage: &Path) -> eyre::Result<()> {
    check_storage(storage)?;
    report_recovery(recover_storage(storage));
    Ok(())
}

/// Creates the storage folder and proves it takes a file, so a wrong path fails at startup with
/// one clear error instead of at the first frame.
fn check_storage(storage: &Path) -> eyre::Result<()> {
    let shown = storage.display();
    std::fs::create_dir_all(storage)
        .wrap_err_with(|| format!("cannot create STORAGE folder {shown}: check the path and permissions"))?;
    let probe = storage.join(format!(".dora-video-recorder-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").wrap_err_with(|| {
        format!("STORAGE folder {shown} is not writable: check its permissions, that it is not mounted read-only, and free space")
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// One line per file a crashed run left behind and this start repaired.
fn report_recovery(outcomes: Vec<(std::path::PathBuf, Result<Recovered, String>)>) {
    for (path, outcome) in outcomes {
        let path = path.display();
        match outcome {
            Ok(Recovered::Repaired { trimmed_bytes, indexed }) => {
                tracing::warn!(%path, trimmed_bytes, indexed, "repaired a recording cut short by a crash")
            }
            Ok(Recovered::Removed) => tracing::warn!(%path, "removed a recording a crash left without any frame"),
            Ok(Recovered::Untouched) => {}
            Err(error) => {
                tracing::warn!(%path, "cannot repair a recording a crash left behind (it is kept as is): {error}")
            }
        }
    }
}
