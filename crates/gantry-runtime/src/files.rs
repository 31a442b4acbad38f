//! File commands: `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_STATE` (heredoc key/value files) and
//! `GITHUB_PATH`, plus a port of the runner's parser for tests.
//!
//! Every value is written in the heredoc form with a fresh `ghadelimiter_<uuid>` delimiter; a key
//! or value that contains the delimiter is refused (never written), which closes the delimiter
//! injection the runner's docs warn about. Only `\n` ends lines (the runner's rule on Linux).
//!
//! See: <https://github.com/actions/runner/blob/main/src/Runner.Worker/FileCommandManager.cs> (`EnvFileKeyValuePairs`)

use std::io::Write;
use std::path::Path;

/// Errors writing a file command.
#[derive(Debug, thiserror::Error)]
pub enum FileCommandError {
    /// The key or value contains the random delimiter: refusing to write.
    #[error("refusing to write `{key}`: the value contains the file-command delimiter")]
    DelimiterCollision {
        /// The key.
        key: String,
    },
    /// A key that the runner cannot parse (empty, or with `=` / newline).
    #[error("invalid file-command key `{key}`")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// Writing the file failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// File path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Formats one heredoc entry with the given delimiter. Fails on collision.
pub fn format_entry(key: &str, value: &str, delimiter: &str) -> Result<String, FileCommandError> {
    if key.is_empty() || key.contains('=') || key.contains('\n') || key.contains("<<") {
        return Err(FileCommandError::InvalidKey {
            key: key.to_string(),
        });
    }
    if key.contains(delimiter) || value.contains(delimiter) {
        return Err(FileCommandError::DelimiterCollision {
            key: key.to_string(),
        });
    }
    Ok(format!("{key}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// A fresh random delimiter, as `@actions/core` makes them.
pub fn new_delimiter() -> String {
    format!("ghadelimiter_{}", uuid::Uuid::new_v4())
}

/// Appends entries to a key/value file command in one write.
pub fn append_entries(path: &Path, entries: &[(String, String)]) -> Result<(), FileCommandError> {
    let mut buf = String::new();
    for (k, v) in entries {
        buf.push_str(&format_entry(k, v, &new_delimiter())?);
    }
    append(path, &buf)
}

/// Appends raw text to a file (creating it).
pub fn append(path: &Path, text: &str) -> Result<(), FileCommandError> {
    let io = |source| FileCommandError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// Errors of the runner's parser (test helper).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `Matching delimiter not found`.
    #[error("Matching delimiter not found '{0}'")]
    NoDelimiter(String),
    /// `Invalid format`.
    #[error("Invalid format '{0}'")]
    InvalidFormat(String),
}

/// A port of the runner's `EnvFileKeyValuePairs`: what the runner will read from the file.
pub fn parse_runner_file(content: &str) -> Result<Vec<(String, String)>, ParseError> {
    let lines: Vec<&str> = content.split('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let hd = line.find("<<");
        match (eq, hd) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let key = &line[..e];
                if key.is_empty() {
                    return Err(ParseError::InvalidFormat(line.to_string()));
                }
                out.push((key.to_string(), line[e + 1..].to_string()));
            }
            (_, Some(h)) => {
                let key = &line[..h];
                let delim = &line[h + 2..];
                if key.is_empty() || delim.is_empty() {
                    return Err(ParseError::InvalidFormat(line.to_string()));
                }
                let mut value: Vec<&str> = Vec::new();
                let mut found = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    if l == delim {
                        found = true;
                        break;
                    }
                    value.push(l);
                }
                if !found {
                    return Err(ParseError::NoDelimiter(delim.to_string()));
                }
                out.push((key.to_string(), value.join("\n")));
            }
            _ => return Err(ParseError::InvalidFormat(line.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_round_trips_through_runner_parser() {
        let values = [
            "plain",
            "multi\nline\nvalue",
            "",
            "ends with newline\n",
            "%0A stays",
            "a=b<<c",
            "\r\nx\r",
        ];
        let mut file = String::new();
        for (i, v) in values.iter().enumerate() {
            file.push_str(&format_entry(&format!("k{i}"), v, &new_delimiter()).unwrap());
        }
        let parsed = parse_runner_file(&file).unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(parsed[i], (format!("k{i}"), v.to_string()));
        }
    }

    #[test]
    fn delimiter_collision_is_refused() {
        let d = "ghadelimiter_x";
        let evil = format!("x\n{d}\nINJECTED=1");
        assert!(matches!(
            format_entry("k", &evil, d),
            Err(FileCommandError::DelimiterCollision { .. })
        ));
        assert!(matches!(
            format_entry("k=v", "x", d),
            Err(FileCommandError::InvalidKey { .. })
        ));
    }

    #[test]
    fn parser_detects_missing_delimiter() {
        assert_eq!(
            parse_runner_file("k<<EOF\nv\n"),
            Err(ParseError::NoDelimiter("EOF".into()))
        );
        assert_eq!(parse_runner_file("a=1\nb<<E\nx\ny\nE\n").unwrap().len(), 2);
    }

    #[test]
    fn append_writes_file() {
        let dir = std::env::temp_dir().join(format!("gantry-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out");
        append_entries(&p, &[("a".into(), "1".into())]).unwrap();
        append_entries(&p, &[("b".into(), "2\n3".into())]).unwrap();
        let parsed = parse_runner_file(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(
            parsed,
            vec![("a".into(), "1".into()), ("b".into(), "2\n3".into())]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
