//! The octocrab client: base URI, token, timeouts, and one `GET` helper that keeps the status,
//! the URL and GitHub's error message in the error.
//!
//! It must not expose the token: requests carry it, errors and logs never do.
//!
//! See: <https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api>

use std::time::Duration;

use gantry_runtime::Secret;
use http::HeaderMap;
use octocrab::Octocrab;

/// An error talking to the GitHub API. Every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The base URL (`GITHUB_API_URL`) is not a usable URL.
    #[error("invalid GitHub API URL `{url}`: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The client could not be built.
    #[error("cannot build the GitHub API client: {reason}")]
    Client {
        /// The underlying error.
        reason: String,
    },
    /// No HTTP response: connection refused, DNS, TLS, timeout.
    #[error("GET {url}: {reason}")]
    Transport {
        /// The request URL.
        url: String,
        /// The underlying error.
        reason: String,
    },
    /// GitHub answered with an error status.
    #[error("GET {url}: HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        /// The request URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// GitHub's `message` field (or the start of the body).
        message: String,
    },
    /// The response body is not the JSON we expect.
    #[error("GET {url}: unexpected response: {reason}")]
    Decode {
        /// The request URL.
        url: String,
        /// The decoding error.
        reason: String,
    },
}

impl ApiError {
    /// The HTTP status, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A GitHub REST client bound to one API base URL.
#[derive(Clone, Debug)]
pub struct GitHub {
    client: Octocrab,
    api_url: String,
    has_token: bool,
}

/// Connect and read timeout for every call (the API is either there quickly or not at all).
pub const TIMEOUT: Duration = Duration::from_secs(20);

impl GitHub {
    /// Builds a client for `api_url` (`GITHUB_API_URL`, e.g. `https://api.github.com` or a GitHub
    /// Enterprise `https://ghe.example.com/api/v3`), authenticated with `token` when given.
    pub fn new(api_url: &str, token: Option<&Secret>) -> Result<Self, ApiError> {
        let trimmed = api_url.trim().trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&trimmed).map_err(|e| ApiError::BadUrl {
            url: api_url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::BadUrl {
                url: api_url.to_string(),
                reason: "the scheme must be http or https".into(),
            });
        }
        let mut builder = Octocrab::builder()
            .base_uri(trimmed.as_str())
            .map_err(|e| ApiError::BadUrl {
                url: api_url.to_string(),
                reason: e.to_string(),
            })?
            .set_connect_timeout(Some(TIMEOUT))
            .set_read_timeout(Some(TIMEOUT));
        let has_token = token.is_some_and(|t| !t.is_empty());
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            builder = builder.personal_token(t.expose().to_string());
        }
        let client = builder.build().map_err(|e| ApiError::Client {
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            api_url: trimmed,
            has_token,
        })
    }

    /// The base URL without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Whether requests carry a token.
    pub fn has_token(&self) -> bool {
        self.has_token
    }

    /// The underlying octocrab client (for calls not wrapped here).
    pub fn octocrab(&self) -> &Octocrab {
        &self.client
    }

    /// The absolute URL of `path` (which starts with `/`) under the base URL. Built by hand so a
    /// GitHub Enterprise base with a path (`/api/v3`) is kept.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_url, path)
    }

    /// `GET` an absolute URL and decode the JSON body. Returns the body and the headers.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(T, HeaderMap), ApiError> {
        let transport = |reason: String| ApiError::Transport {
            url: url.to_string(),
            reason,
        };
        let resp = self
            .client
            ._get(url)
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = self
            .client
            .body_to_string(resp)
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        if !status.is_success() {
            return Err(ApiError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                message: github_message(&body),
            });
        }
        let value = serde_json::from_str(&body).map_err(|e| ApiError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok((value, headers))
    }
}

/// GitHub's error `message`, or the start of a non-JSON body.
fn github_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return m.to_string();
    }
    body.trim().chars().take(200).collect()
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    // octocrab's Display can append a backtrace section; keep the first line.
    s.lines().next().unwrap_or_default().to_string()
}

/// The `next` URL of a `Link` header (`<url>; rel="next"`).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    for part in link.split(',') {
        let mut pieces = part.split(';');
        let url = pieces.next()?.trim();
        if pieces.any(|p| p.trim() == "rel=\"next\"") {
            return Some(
                url.trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_urls() {
        assert!(matches!(
            GitHub::new("not a url", None),
            Err(ApiError::BadUrl { .. })
        ));
        assert!(matches!(
            GitHub::new("ftp://x", None),
            Err(ApiError::BadUrl { .. })
        ));
    }

    #[tokio::test]
    async fn keeps_enterprise_path() {
        let gh = GitHub::new("https://ghe.example.com/api/v3/", None).unwrap();
        assert_eq!(
            gh.url("/repos/o/r"),
            "https://ghe.example.com/api/v3/repos/o/r"
        );
        assert!(!gh.has_token());
    }

    #[test]
    fn parses_link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::LINK,
            "<https://api.github.com/repos/o/r/tags?page=2>; rel=\"next\", <https://api.github.com/repos/o/r/tags?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repos/o/r/tags?page=2")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn message_from_body() {
        assert_eq!(github_message(r#"{"message":"Not Found"}"#), "Not Found");
        assert_eq!(github_message("oops"), "oops");
    }
}
