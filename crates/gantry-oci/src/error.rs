//! The crate's error type. Every variant carries the registry or reference it is about, and never
//! a credential: messages are safe to print as they are.

/// Errors talking to a registry or assembling an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference that does not parse.
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry refused our credentials (or we had none).
    #[error("authentication to {registry} failed: {detail}")]
    Auth {
        /// Registry host.
        registry: String,
        /// Why (status and the registry's error code; never the credential).
        detail: String,
    },
    /// Authenticated, but not allowed.
    #[error("{registry} denied {action} on `{repository}`: {detail}")]
    Denied {
        /// Registry host.
        registry: String,
        /// Repository.
        repository: String,
        /// What we tried (`push`, `pull`).
        action: String,
        /// The registry's message.
        detail: String,
    },
    /// A manifest or blob does not exist.
    #[error("{what} not found: {reference}")]
    NotFound {
        /// `manifest`, `blob`, `image`.
        what: &'static str,
        /// What we looked for.
        reference: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{registry}: {method} {path} returned HTTP {status}: {detail}")]
    Http {
        /// Registry host.
        registry: String,
        /// HTTP method.
        method: String,
        /// Path (no query, no credentials).
        path: String,
        /// Status code.
        status: u16,
        /// The registry's error code and message, cut short.
        detail: String,
    },
    /// Network failure after retries.
    #[error("cannot reach {registry} ({path}): {message}")]
    Transport {
        /// Registry host.
        registry: String,
        /// Path being requested.
        path: String,
        /// The transport error, flattened.
        message: String,
    },
    /// A local file problem.
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Content does not hash to the digest it claims.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest we were told.
        expected: String,
        /// The digest of the bytes we got.
        actual: String,
    },
    /// A manifest over the size limit.
    #[error("manifest {reference} is {size} bytes, over the {limit}-byte limit")]
    ManifestTooLarge {
        /// Which manifest.
        reference: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A manifest, config or index that is not what we expect.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being read.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A platform that is not in the image.
    #[error("platform {platform} is not in {reference} (it has: {available})")]
    UnknownPlatform {
        /// Asked for.
        platform: String,
        /// Image.
        reference: String,
        /// Comma-separated list.
        available: String,
    },
}

impl Error {
    /// Whether this error was an authentication failure (wrong or missing credentials).
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Auth { .. } | Self::Denied { .. })
    }

    /// Whether retrying the whole operation might succeed (network or server trouble).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Http { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_string(),
            source,
        }
    }
}
