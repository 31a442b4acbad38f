//! Docker credential helpers: for a registry whose login `docker login` left in a helper
//! (`credsStore` / `credHelpers` in `config.json`), runs `docker-credential-<name> get` with the
//! server URL on stdin and adds the answer to the credentials, masked as soon as it is read.
//!
//! Precedence is the Docker CLI's, below gantry's own inputs: `username`/`password`,
//! `registry-auth` and `github-token` win; then `credHelpers[host]`, then `credsStore`, then
//! `auths`. A helper that has nothing for the host ("credentials not found") leaves the host
//! anonymous (or to `auths`); a helper that cannot run is a warning, not a failure, because public
//! images need no login. Nothing here logs a credential; the helper's output is never streamed.
//!
//! See: <https://github.com/docker/docker-credential-helpers> (protocol) and
//! <https://docs.docker.com/reference/cli/docker/login/#credential-helpers>.

use std::collections::BTreeSet;
use std::time::Duration;

use gantry_exec::{Cmd, Exec, ExecError};
use gantry_oci::Credentials;
use gantry_oci::auth::DockerHelpers;
use gantry_runtime::{Console, Secret};

/// What a helper answered for one host.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A login (`username` may be `<token>`: an identity token).
    Login(String, Secret),
    /// The helper has nothing for this host.
    NotFound,
}

/// Asks `docker-credential-<helper> get` for `server_url`.
pub(crate) async fn ask(
    exec: &dyn Exec,
    console: &Console,
    helper: &str,
    server_url: &str,
) -> Result<Answer, String> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!("`{helper}` is not a credential helper name"));
    }
    let program = format!("docker-credential-{helper}");
    let cmd = Cmd::new(&program)
        .arg("get")
        .stdin_bytes(server_url.as_bytes().to_vec())
        .timeout(Duration::from_secs(30));
    let out = match exec.run(&cmd).await {
        Ok(o) => o,
        Err(ExecError::Failed { stderr, .. }) => {
            // The helper says "credentials not found in native keychain" on stdout or stderr
            // and exits 1; its stdout is not in the error, so match what we have.
            if stderr.to_ascii_lowercase().contains("not found") || stderr.trim().is_empty() {
                return Ok(Answer::NotFound);
            }
            return Err(format!("`{program} get` failed: {}", stderr.trim()));
        }
        Err(e) => return Err(format!("`{program} get` could not run: {e}")),
    };
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let reply: Reply = serde_json::from_slice(&out.stdout).map_err(|_| {
        // never echo the output: it may hold the secret
        format!("`{program} get` answered something that is not its JSON reply")
    })?;
    if reply.secret.is_empty() {
        return Ok(Answer::NotFound);
    }
    console.add_mask(&reply.secret);
    Ok(Answer::Login(reply.username, Secret::new(reply.secret)))
}

/// Fills `creds` for each registry in `hosts` that the inputs did not cover (`input_hosts`) and
/// that a helper holds.
pub(crate) async fn fill(
    exec: &dyn Exec,
    console: &Console,
    helpers: &DockerHelpers,
    input_hosts: &[String],
    hosts: &BTreeSet<String>,
    creds: &mut Credentials,
) {
    for host in hosts {
        if input_hosts
            .iter()
            .any(|h| DockerHelpers::server_url(h) == DockerHelpers::server_url(host))
        {
            continue;
        }
        let Some(helper) = helpers.helper_for(host) else {
            continue;
        };
        match ask(exec, console, helper, &DockerHelpers::server_url(host)).await {
            Ok(Answer::Login(user, secret)) => {
                tracing::info!("{host}: login from the `{helper}` credential helper");
                creds.insert(host, &user, secret);
            }
            Ok(Answer::NotFound) => {
                tracing::debug!("{host}: the `{helper}` credential helper has no login");
            }
            Err(e) => console.warning(
                "credential helper",
                &format!("{host}: {e}; continuing without its login"),
            ),
        }
    }
}
