//! `gantry-github`: the GitHub REST API calls gantry makes, through one octocrab client.
//!
//! It owns the client ([`client::GitHub`], base URI from `GITHUB_API_URL`, optional token) and
//! the typed calls the actions need: repository info, commit dates, the repository's tags. It
//! must not know about any action's rules (what a tag means, when to fall back): callers decide.
//! It never logs or returns the token.

pub mod client;
pub mod deployments;
pub mod repos;

pub use client::{ApiError, GitHub};
pub use repos::{CommitInfo, RepoInfo, RepoLicense};
