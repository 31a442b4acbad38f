//! Reproducible layers: a tar of local files with sorted entries, fixed mtimes
//! (`SOURCE_DATE_EPOCH`, else 0), fixed owner, normalised modes (0755 for directories and
//! executables, 0644 otherwise), explicit parent directories, no user or group names, compressed
//! with a pinned gzip level, a zeroed header and fixed 1 MiB compression chunks (compressed on
//! every core, see [`crate::pgzip`]). Same inputs, same digest, on any machine.
//!
//! It writes to a file while hashing (the `diff_id` over the tar, the digest over the gzip), so a
//! layer is never held in memory. It must not follow symlinks out of the source tree: a symlink is
//! stored as a symlink.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::digest::Hasher;
use crate::pgzip::ParallelGz;

/// One `src:dest` mapping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerSpec {
    /// Local file or directory.
    pub src: PathBuf,
    /// Absolute path in the image. A directory source is copied *into* it; a file source becomes
    /// it (or goes inside it when it ends with `/`).
    pub dest: String,
}

/// Who owns the files and how modes are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerOptions {
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Entry mtime (seconds since the epoch).
    pub mtime: u64,
    /// gzip level (pinned; part of the digest). Default 1 (`BestSpeed`), as go-containerregistry,
    /// ko and crane compress layers: layer compression dominates assemble time, and registries store
    /// what we send.
    pub level: u32,
}

impl Default for LayerOptions {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            mtime: 0,
            level: 1,
        }
    }
}

/// A finished layer on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltLayer {
    /// The gzip file.
    pub path: PathBuf,
    /// sha256 of the gzip bytes.
    pub digest: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Compressed size.
    pub size: u64,
    /// Uncompressed size.
    pub tar_size: u64,
    /// Number of entries.
    pub entries: usize,
}

enum Kind {
    Dir,
    File(PathBuf, bool),
    Symlink(PathBuf),
}

struct Entry {
    kind: Kind,
    owned: bool,
}

struct HashWriter<W: Write> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn clean_dest(dest: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::Invalid {
        what: format!("layer destination `{dest}`"),
        reason: reason.into(),
    };
    if !dest.starts_with('/') {
        return Err(bad("must be an absolute path in the image, e.g. /app"));
    }
    let mut parts = Vec::new();
    for p in dest.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err(bad("must not contain `..`")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn walk(src: &Path, dest: &str, entries: &mut BTreeMap<String, Entry>) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| Error::io(src.display(), e))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| Error::io(src.display(), e))?;
        entries.insert(
            dest.to_string(),
            Entry {
                kind: Kind::Symlink(target),
                owned: true,
            },
        );
    } else if ft.is_dir() {
        if !dest.is_empty() {
            entries.insert(
                dest.to_string(),
                Entry {
                    kind: Kind::Dir,
                    owned: true,
                },
            );
        }
        let mut children: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| Error::io(src.display(), e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::io(src.display(), e))?;
        children.sort_by_key(std::fs::DirEntry::file_name);
        for c in children {
            let name = c.file_name();
            let name = name.to_str().ok_or_else(|| Error::Invalid {
                what: format!("file name under {}", src.display()),
                reason: "not UTF-8".into(),
            })?;
            let d = if dest.is_empty() {
                name.to_string()
            } else {
                format!("{dest}/{name}")
            };
            walk(&c.path(), &d, entries)?;
        }
    } else if ft.is_file() {
        use std::os::unix::fs::PermissionsExt;
        let exec = meta.permissions().mode() & 0o111 != 0;
        entries.insert(
            dest.to_string(),
            Entry {
                kind: Kind::File(src.to_path_buf(), exec),
                owned: true,
            },
        );
    }
    Ok(())
}

/// Builds one layer from `specs` into `out` (a `.tar.gz` file).
pub fn build_layer(
    specs: &[LayerSpec],
    opts: &LayerOptions,
    out: &Path,
) -> Result<BuiltLayer, Error> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for s in specs {
        if !s.src.exists() && std::fs::symlink_metadata(&s.src).is_err() {
            return Err(Error::io(
                s.src.display(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "layer source does not exist"),
            ));
        }
        let mut dest = clean_dest(&s.dest)?;
        if s.src.is_file() && s.dest.ends_with('/') {
            let name = s.src.file_name().and_then(|n| n.to_str()).unwrap_or("file");
            dest = if dest.is_empty() {
                name.to_string()
            } else {
                format!("{dest}/{name}")
            };
        }
        if dest.is_empty() && s.src.is_file() {
            return Err(Error::Invalid {
                what: format!("layer `{}:{}`", s.src.display(), s.dest),
                reason: "a file needs a destination path, not `/`".into(),
            });
        }
        // Parent directories, owned by root.
        let parts: Vec<&str> = dest.split('/').collect();
        for i in 1..parts.len() {
            let p = parts[..i].join("/");
            entries.entry(p).or_insert(Entry {
                kind: Kind::Dir,
                owned: false,
            });
        }
        walk(&s.src, &dest, &mut entries)?;
    }
    let file = std::fs::File::create(out).map_err(|e| Error::io(out.display(), e))?;
    let gz_hash = HashWriter {
        inner: std::io::BufWriter::with_capacity(256 * 1024, file),
        hasher: Hasher::new(),
    };
    let gz = ParallelGz::new(
        gz_hash,
        opts.level,
        ParallelGz::<std::fs::File>::default_threads(),
    );
    let tar_hash = HashWriter {
        inner: gz,
        hasher: Hasher::new(),
    };
    let mut tar = tar::Builder::new(tar_hash);
    tar.mode(tar::HeaderMode::Deterministic);
    let io = |e: std::io::Error| Error::io(out.display(), e);
    let count = entries.len();
    for (path, e) in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(opts.mtime);
        let (uid, gid) = if e.owned {
            (opts.uid, opts.gid)
        } else {
            (0, 0)
        };
        h.set_uid(uid);
        h.set_gid(gid);
        let _ = h.set_username("");
        let _ = h.set_groupname("");
        match &e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(io)?;
            }
            Kind::File(src, exec) => {
                let f = std::fs::File::open(src).map_err(|e| Error::io(src.display(), e))?;
                let len = f.metadata().map_err(|e| Error::io(src.display(), e))?.len();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if *exec { 0o755 } else { 0o644 });
                h.set_size(len);
                tar.append_data(&mut h, path, f).map_err(io)?;
            }
            Kind::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, path, target).map_err(io)?;
            }
        }
    }
    let tar_hash = tar.into_inner().map_err(io)?;
    let tar_size = tar_hash.hasher.len();
    let diff_id = tar_hash.hasher.finish();
    let gz_hash = tar_hash.inner.finish().map_err(io)?;
    let size = gz_hash.hasher.len();
    let digest = gz_hash.hasher.finish();
    let mut w = gz_hash.inner;
    w.flush().map_err(io)?;
    Ok(BuiltLayer {
        path: out.to_path_buf(),
        digest,
        diff_id,
        size,
        tar_size,
        entries: count,
    })
}

/// Compresses an existing tar (e.g. a layer from `docker save`) with the pinned gzip settings,
/// hashing both sides; never holds it in memory.
pub fn compress_tar(tar_path: &Path, level: u32, out: &Path) -> Result<BuiltLayer, Error> {
    let mut src = std::fs::File::open(tar_path).map_err(|e| Error::io(tar_path.display(), e))?;
    let file = std::fs::File::create(out).map_err(|e| Error::io(out.display(), e))?;
    let gz_hash = HashWriter {
        inner: std::io::BufWriter::with_capacity(256 * 1024, file),
        hasher: Hasher::new(),
    };
    let gz = ParallelGz::new(
        gz_hash,
        level,
        ParallelGz::<std::fs::File>::default_threads(),
    );
    let mut tar_hash = HashWriter {
        inner: gz,
        hasher: Hasher::new(),
    };
    std::io::copy(&mut src, &mut tar_hash).map_err(|e| Error::io(tar_path.display(), e))?;
    let tar_size = tar_hash.hasher.len();
    let diff_id = tar_hash.hasher.finish();
    let gz_hash = tar_hash
        .inner
        .finish()
        .map_err(|e| Error::io(out.display(), e))?;
    let size = gz_hash.hasher.len();
    let digest = gz_hash.hasher.finish();
    let mut w = gz_hash.inner;
    w.flush().map_err(|e| Error::io(out.display(), e))?;
    Ok(BuiltLayer {
        path: out.to_path_buf(),
        digest,
        diff_id,
        size,
        tar_size,
        entries: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_input_same_digest_and_mtime_matters() {
        let dir = tempfile::tempdir().expect("tmp");
        let src = dir.path().join("dist");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("b.txt"), "b").expect("w");
        std::fs::write(src.join("sub/a.txt"), "a").expect("w");
        let spec = [LayerSpec {
            src: src.clone(),
            dest: "/app".into(),
        }];
        let o = LayerOptions {
            mtime: 1_700_000_000,
            ..Default::default()
        };
        let a = build_layer(&spec, &o, &dir.path().join("a.tgz")).expect("a");
        // Touch the files: mtimes on disk must not matter.
        std::fs::write(src.join("b.txt"), "b").expect("w");
        let b = build_layer(&spec, &o, &dir.path().join("b.tgz")).expect("b");
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.entries, 4, "app/, app/b.txt, app/sub/, app/sub/a.txt");
        let c = build_layer(
            &spec,
            &LayerOptions { mtime: 1, ..o },
            &dir.path().join("c.tgz"),
        )
        .expect("c");
        assert_ne!(a.digest, c.digest);
        // The tar lists sorted entries with uid 0 and the fixed mtime.
        let f = std::fs::File::open(&a.path).expect("open");
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let names: Vec<(String, u64, u64)> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    e.path().expect("p").display().to_string(),
                    h.mtime().expect("m"),
                    h.uid().expect("u"),
                )
            })
            .collect();
        assert_eq!(names[0], ("app/".to_string(), 1_700_000_000, 0));
        assert_eq!(
            names.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
            ["app/", "app/b.txt", "app/sub/", "app/sub/a.txt"]
        );
    }

    #[test]
    fn missing_source_and_bad_dest_are_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("x.tgz");
        let e = build_layer(
            &[LayerSpec {
                src: dir.path().join("nope"),
                dest: "/app".into(),
            }],
            &LayerOptions::default(),
            &out,
        )
        .expect_err("missing");
        assert!(e.to_string().contains("nope"), "{e}");
        std::fs::write(dir.path().join("f"), "x").expect("w");
        assert!(
            build_layer(
                &[LayerSpec {
                    src: dir.path().join("f"),
                    dest: "app/../etc".into()
                }],
                &LayerOptions::default(),
                &out
            )
            .is_err()
        );
    }
}
