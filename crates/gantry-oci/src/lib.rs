//! `gantry-oci`: the registry client and image assembly behind `build-image`.
//!
//! What it owns: references ([`ImageRef`]), credentials and token auth with multi-scope tokens
//! ([`auth`]), the HTTP client with retries, blob HEAD/mount/upload and manifests as exact bytes
//! ([`Client`]), digest-preserving copies with referrers ([`copy`]), reproducible layers
//! ([`layer`]) and config/manifest/index creation ([`image`]).
//!
//! What it must not do: read the process environment, print to stdout, or hold a whole layer in
//! memory. Credentials stay in [`gantry_runtime::Secret`]s and never reach an error message.
//! `oci-client` is not used on the write path: its pushes lack HEAD checks, retries and
//! multi-scope tokens (see the crate README in `crates/README.md` and reference/build-image.md §3).

pub mod auth;
pub mod client;
pub mod copy;
pub mod digest;
mod error;
pub mod image;
pub mod layer;
pub mod manifest;
pub mod pgzip;
pub mod reference;
mod tls;

pub use auth::Credentials;
pub use client::{BlobOutcome, BlobSource, Client, ClientConfig, Stats, StatsSnapshot};
pub use error::Error;
pub use manifest::{Descriptor, Platform, RawManifest};
pub use reference::ImageRef;
pub use tls::check_ca_pem;
