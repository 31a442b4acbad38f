//! Files we write into the workspace are given to the workspace directory's owner.
//!
//! The container runs as root (GitHub forbids `USER`), so without this the runner user on the host
//! could not clean the workspace later (actions/runner#434). Only paths inside the workspace are
//! touched; outside a container (not root, or owner already matching) this does nothing.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Chowns `path` (recursively for directories) and every directory between it and `workspace`
/// to the owner of `workspace`. Errors are returned for the caller to log; they never fail a step.
pub fn give_to_workspace_owner(path: &Path, workspace: &Path) -> std::io::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let Ok(rel) = path.strip_prefix(workspace) else {
        return Ok(());
    };
    let meta = std::fs::metadata(workspace)?;
    let (uid, gid) = (meta.uid(), meta.gid());
    // Every created ancestor inside the workspace.
    let mut cur = workspace.to_path_buf();
    for comp in rel
        .parent()
        .map(|p| p.components().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        cur.push(comp);
        chown_if_needed(&cur, uid, gid)?;
    }
    chown_tree(path, uid, gid)
}

fn chown_if_needed(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(path)?;
    if m.uid() != uid || m.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    chown_if_needed(path, uid, gid)?;
    let m = std::fs::symlink_metadata(path)?;
    if m.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
