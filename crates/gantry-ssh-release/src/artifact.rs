//! Turning the `artifact` input into one local tar stream: a `.tar`/`.tar.gz` file as is, a
//! directory or `.zip` repacked as `.tar.gz`, an HTTPS download or a GitHub Actions artifact
//! (zip) fetched first. Computes the SHA-256 of exactly the bytes that will be streamed (each host
//! checks it on arrival), the unpacked size and the entry count (for the disk check).
//!
//! It must not talk to any host; it only prepares local files in a temp dir it owns.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use gantry_runtime::Secret;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::ArtifactSource;

/// The artifact ready to stream.
#[derive(Clone, Debug, Serialize)]
pub struct Prepared {
    /// Local file that is streamed.
    pub path: PathBuf,
    /// Whether it is gzip-compressed.
    pub gzip: bool,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Bytes on the wire.
    pub size: u64,
    /// Sum of the entry sizes once unpacked.
    pub unpacked_size: u64,
    /// Number of entries.
    pub entries: u64,
    /// What it was made from (for logs and history).
    pub source: String,
}

/// Errors preparing the artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file cannot be read or written.
    #[error("artifact {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a tar, tar.gz or zip.
    #[error("artifact {path} is not a .tar, .tar.gz/.tgz, .zip or directory ({reason})")]
    Format {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Checksum mismatch.
    #[error("artifact {source_name} has sha256 {actual}, but artifact-sha256 is {expected}")]
    Checksum {
        /// Source.
        source_name: String,
        /// Expected.
        expected: String,
        /// Actual.
        actual: String,
    },
    /// Download failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// URL (no credentials).
        url: String,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Hashes a file.
pub(crate) fn sha256_file(path: &Path) -> Result<(String, u64), ArtifactError> {
    let mut f = BufReader::new(File::open(path).map_err(io(path))?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf).map_err(io(path))?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

#[derive(Debug, PartialEq)]
enum Kind {
    Gzip,
    Zip,
    Tar,
}

fn sniff(path: &Path) -> Result<Kind, ArtifactError> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut head = [0u8; 262];
    let mut n = 0;
    while n < head.len() {
        let r = f.read(&mut head[n..]).map_err(io(path))?;
        if r == 0 {
            break;
        }
        n += r;
    }
    if n >= 2 && head[..2] == [0x1f, 0x8b] {
        Ok(Kind::Gzip)
    } else if n >= 4 && &head[..4] == b"PK\x03\x04" {
        Ok(Kind::Zip)
    } else if n >= 262 && &head[257..262] == b"ustar" {
        Ok(Kind::Tar)
    } else {
        Err(ArtifactError::Format {
            path: path.display().to_string(),
            reason: "unrecognised content".into(),
        })
    }
}

fn tar_stats<R: Read>(r: R, path: &Path) -> Result<(u64, u64), ArtifactError> {
    let mut a = tar::Archive::new(r);
    let (mut size, mut n) = (0u64, 0u64);
    for e in a.entries().map_err(|e| ArtifactError::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })? {
        let e = e.map_err(|e| ArtifactError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        size += e.header().size().unwrap_or(0);
        n += 1;
    }
    Ok((size, n))
}

fn tar_dir(dir: &Path, out: &Path) -> Result<(), ArtifactError> {
    let f = File::create(out).map_err(io(out))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).map_err(io(dir))?;
    let gz = b.into_inner().map_err(io(out))?;
    gz.finish().map_err(io(out))?.flush().map_err(io(out))?;
    Ok(())
}

fn zip_to_tar(zip_path: &Path, out: &Path) -> Result<(), ArtifactError> {
    let fmt = |e: zip::result::ZipError| ArtifactError::Format {
        path: zip_path.display().to_string(),
        reason: e.to_string(),
    };
    let mut z = zip::ZipArchive::new(File::open(zip_path).map_err(io(zip_path))?).map_err(fmt)?;
    let f = File::create(out).map_err(io(out))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for idx in 0..z.len() {
        let mut e = z.by_index(idx).map_err(fmt)?;
        let Some(name) = e.enclosed_name() else {
            return Err(ArtifactError::Format {
                path: zip_path.display().to_string(),
                reason: format!("unsafe entry name {:?}", e.name()),
            });
        };
        let mut h = tar::Header::new_gnu();
        let mode = e
            .unix_mode()
            .unwrap_or(if e.is_dir() { 0o755 } else { 0o644 });
        h.set_mode(mode & 0o7777);
        if e.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, &name, std::io::empty())
                .map_err(io(out))?;
        } else {
            h.set_size(e.size());
            b.append_data(&mut h, &name, &mut e).map_err(io(out))?;
        }
    }
    let gz = b.into_inner().map_err(io(out))?;
    gz.finish().map_err(io(out))?.flush().map_err(io(out))?;
    Ok(())
}

/// Turns a local file or directory into a streamable tar (in `work` when repacked).
pub(crate) fn prepare_local(
    path: &Path,
    expected: Option<&str>,
    work: &Path,
    source: String,
) -> Result<Prepared, ArtifactError> {
    if path.is_dir() {
        let out = work.join("artifact.tar.gz");
        tar_dir(path, &out)?;
        return finish(&out, true, source);
    }
    let (sum, _) = sha256_file(path)?;
    if let Some(exp) = expected
        && exp != sum
    {
        return Err(ArtifactError::Checksum {
            source_name: source,
            expected: exp.to_string(),
            actual: sum,
        });
    }
    match sniff(path)? {
        Kind::Gzip => finish(path, true, source),
        Kind::Tar => finish(path, false, source),
        Kind::Zip => {
            // A zip holding exactly one tarball (the usual upload-artifact of `dist/app.tar.gz`)
            // releases that tarball; any other zip is repacked as it is.
            let inner = single_tarball(path, work)?;
            match inner {
                Some(p) => prepare_local(&p, None, work, source),
                None => {
                    let out = work.join("artifact.tar.gz");
                    zip_to_tar(path, &out)?;
                    finish(&out, true, source)
                }
            }
        }
    }
}

fn single_tarball(zip_path: &Path, work: &Path) -> Result<Option<PathBuf>, ArtifactError> {
    let fmt = |e: zip::result::ZipError| ArtifactError::Format {
        path: zip_path.display().to_string(),
        reason: e.to_string(),
    };
    let mut z = zip::ZipArchive::new(File::open(zip_path).map_err(io(zip_path))?).map_err(fmt)?;
    if z.len() != 1 {
        return Ok(None);
    }
    let mut e = z.by_index(0).map_err(fmt)?;
    let name = e.name().to_ascii_lowercase();
    if !(name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        return Ok(None);
    }
    let out = work.join("inner-artifact");
    let mut f = File::create(&out).map_err(io(&out))?;
    std::io::copy(&mut e, &mut f).map_err(io(&out))?;
    Ok(Some(out))
}

fn finish(path: &Path, gzip: bool, source: String) -> Result<Prepared, ArtifactError> {
    let (sha256, size) = sha256_file(path)?;
    let f = BufReader::new(File::open(path).map_err(io(path))?);
    let (unpacked_size, entries) = if gzip {
        tar_stats(flate2::read::GzDecoder::new(f), path)?
    } else {
        tar_stats(f, path)?
    };
    Ok(Prepared {
        path: path.to_path_buf(),
        gzip,
        sha256,
        size,
        unpacked_size,
        entries,
        source,
    })
}

/// Downloads a URL to `out`, streaming.
async fn download(url: &str, out: &Path, token: Option<&Secret>) -> Result<(), ArtifactError> {
    use futures::StreamExt;
    let err = |reason: String| ArtifactError::Download {
        url: url.to_string(),
        reason,
    };
    let client = reqwest::Client::builder()
        .user_agent("gantry-ssh-release")
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req
            .bearer_auth(t.expose())
            .header("Accept", "application/vnd.github+json");
    }
    let resp = req.send().await.map_err(|e| err(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(err(format!("HTTP {}", resp.status())));
    }
    let mut f = File::create(out).map_err(io(out))?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| err(e.to_string()))?;
        f.write_all(&chunk).map_err(io(out))?;
    }
    Ok(())
}

/// GitHub API coordinates for `actions-artifact:`.
#[derive(Clone, Debug)]
pub(crate) struct GitHubApi {
    pub api_url: String,
    pub repository: String,
    pub run_id: String,
    pub token: Option<Secret>,
}

async fn resolve_actions_artifact(
    api: &GitHubApi,
    reference: &str,
) -> Result<String, ArtifactError> {
    let base = api.api_url.trim_end_matches('/');
    if reference.chars().all(|c| c.is_ascii_digit()) {
        return Ok(format!(
            "{base}/repos/{}/actions/artifacts/{reference}/zip",
            api.repository
        ));
    }
    // By name: this run's artifact first (the usual build → deploy job pair), else the newest in
    // the repository.
    let client = reqwest::Client::builder()
        .user_agent("gantry-ssh-release")
        .build()
        .map_err(|e| ArtifactError::Download {
            url: base.to_string(),
            reason: e.to_string(),
        })?;
    let mut urls = Vec::new();
    if !api.run_id.is_empty() {
        urls.push(format!(
            "{base}/repos/{}/actions/runs/{}/artifacts?name={reference}",
            api.repository, api.run_id
        ));
    }
    urls.push(format!(
        "{base}/repos/{}/actions/artifacts?name={reference}&per_page=1",
        api.repository
    ));
    for u in urls {
        let mut req = client
            .get(&u)
            .header("Accept", "application/vnd.github+json");
        if let Some(t) = &api.token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await.map_err(|e| ArtifactError::Download {
            url: u.clone(),
            reason: e.to_string(),
        })?;
        if !resp.status().is_success() {
            return Err(ArtifactError::Download {
                url: u,
                reason: format!("HTTP {}", resp.status()),
            });
        }
        let v: serde_json::Value = resp.json().await.map_err(|e| ArtifactError::Download {
            url: u.clone(),
            reason: e.to_string(),
        })?;
        if let Some(id) = v["artifacts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["expired"] != true))
            .and_then(|a| a["id"].as_u64())
        {
            return Ok(format!(
                "{base}/repos/{}/actions/artifacts/{id}/zip",
                api.repository
            ));
        }
    }
    Err(ArtifactError::Download {
        url: format!("actions-artifact:{reference}"),
        reason: format!(
            "no unexpired artifact named `{reference}` in {}",
            api.repository
        ),
    })
}

/// Prepares any artifact source.
pub(crate) async fn prepare(
    src: &ArtifactSource,
    expected: Option<&str>,
    work: &Path,
    api: &GitHubApi,
) -> Result<Prepared, ArtifactError> {
    match src {
        ArtifactSource::Local { path } => {
            let (p, e, w) = (
                path.clone(),
                expected.map(str::to_string),
                work.to_path_buf(),
            );
            let source = path.display().to_string();
            tokio::task::spawn_blocking(move || prepare_local(&p, e.as_deref(), &w, source))
                .await
                .unwrap_or_else(|e| {
                    Err(ArtifactError::Format {
                        path: String::new(),
                        reason: e.to_string(),
                    })
                })
        }
        ArtifactSource::Url { url } => {
            let out = work.join("download");
            download(url, &out, None).await?;
            let (e, w, u) = (
                expected.map(str::to_string),
                work.to_path_buf(),
                url.clone(),
            );
            tokio::task::spawn_blocking(move || prepare_local(&out, e.as_deref(), &w, u))
                .await
                .unwrap_or_else(|e| {
                    Err(ArtifactError::Format {
                        path: String::new(),
                        reason: e.to_string(),
                    })
                })
        }
        ArtifactSource::ActionsArtifact { reference } => {
            let url = resolve_actions_artifact(api, reference).await?;
            let out = work.join("actions-artifact.zip");
            download(&url, &out, api.token.as_ref()).await?;
            let (e, w, s) = (
                expected.map(str::to_string),
                work.to_path_buf(),
                format!("actions-artifact:{reference}"),
            );
            tokio::task::spawn_blocking(move || prepare_local(&out, e.as_deref(), &w, s))
                .await
                .unwrap_or_else(|e| {
                    Err(ArtifactError::Format {
                        path: String::new(),
                        reason: e.to_string(),
                    })
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_zip_and_tarball_give_the_same_tree() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("pkg")).unwrap();
        std::fs::write(src.join("pkg/a.txt"), b"hello").unwrap();
        std::fs::write(src.join("b.txt"), b"world!").unwrap();
        let w1 = t.path().join("w1");
        std::fs::create_dir_all(&w1).unwrap();
        let p = prepare_local(&src, None, &w1, "dir".into()).unwrap();
        assert!(p.gzip);
        assert_eq!(p.unpacked_size, 11);
        // the same file with a wrong checksum is refused
        let err = prepare_local(&p.path, Some(&"0".repeat(64)), &w1, "x".into()).unwrap_err();
        assert!(matches!(err, ArtifactError::Checksum { .. }));
        let ok = prepare_local(&p.path, Some(&p.sha256), &w1, "x".into()).unwrap();
        assert_eq!(ok.sha256, p.sha256);
        // zip
        let zp = t.path().join("a.zip");
        let mut z = zip::ZipWriter::new(File::create(&zp).unwrap());
        z.start_file("pkg/a.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b"hello").unwrap();
        z.finish().unwrap();
        let w2 = t.path().join("w2");
        std::fs::create_dir_all(&w2).unwrap();
        let zpp = prepare_local(&zp, None, &w2, "zip".into()).unwrap();
        assert_eq!((zpp.unpacked_size, zpp.entries), (5, 1));
        // garbage
        let g = t.path().join("g.bin");
        std::fs::write(&g, b"not an archive").unwrap();
        assert!(matches!(
            prepare_local(&g, None, &w2, "g".into()),
            Err(ArtifactError::Format { .. })
        ));
    }
}
