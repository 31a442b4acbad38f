//! Real `docker-registry` (distribution 2.8.2, Debian package `docker-registry`) instances on free
//! loopback ports, in three configurations: plain HTTP, htpasswd Basic auth behind TLS (a test CA
//! and a leaf certificate made with `openssl`), and token auth with a small in-process token
//! server (ES256 JWTs with an `x5c` header) that records the scopes clients ask for. Each instance
//! is killed on drop. Helpers seed images through `gantry-oci` and inspect them with `skopeo`.
//!
//! Test-only code: it spawns processes directly and must never reach beyond 127.0.0.1.
//!
//! See: <https://distribution.github.io/distribution/about/configuration/> and
//! `/usr/share/doc/docker-registry/spec/auth/token.md.gz`.

#![allow(clippy::disallowed_methods)] // test harness: spawns docker-registry, openssl, skopeo

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

pub use gantry_oci;

/// The test user of the Basic and token registries.
pub const USER: &str = "ci";
/// Its password.
pub const PASSWORD: &str = "s3cret";
/// bcrypt (cost 4: the registry checks it on every request) of [`PASSWORD`].
const HTPASSWD: &str = "ci:$2b$04$IPScCL8ityeb7/7h1zbL6uqe0dUrQtzLOc9E0chtz08lASBUVsK8G\n";

/// Which configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    /// Plain HTTP, no auth.
    Plain,
    /// HTTPS with a test CA, htpasswd Basic auth.
    BasicTls,
    /// Plain HTTP with bearer tokens from an in-process token server.
    Token,
}

/// A running registry.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The configuration.
    pub kind: RegistryKind,
    /// The CA certificate to trust (TLS configuration only).
    pub ca_file: Option<PathBuf>,
    token: Option<TokenServer>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("host", &self.host)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The `docker-registry` binary, if installed.
pub fn registry_binary() -> Option<PathBuf> {
    ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Makes a CA and a leaf for 127.0.0.1/localhost in `dir` (`ca.crt`, `reg.crt`, `reg.key`).
pub fn make_test_ca(dir: &Path) -> Result<(), String> {
    let d = |n: &str| dir.join(n);
    run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=gantry-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]))?;
    run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "reg.key",
        "-out",
        "reg.csr",
    ]))?;
    std::fs::write(
        d("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .map_err(|e| e.to_string())?;
    run(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "reg.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "reg.crt",
    ]))
}

impl Registry {
    /// Starts a registry, or says why it cannot start here (for `skip!`).
    pub fn start(kind: RegistryKind) -> Result<Self, String> {
        let bin = registry_binary()
            .ok_or("docker-registry is not installed (apt-get install docker-registry)")?;
        let dir = tempfile::Builder::new()
            .prefix("gantry-registry-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = crate::free_port();
        let host = format!("127.0.0.1:{port}");
        let data = dir.path().join("data");
        let mut config = format!(
            "version: 0.1\nlog: {{level: info, accesslog: {{disabled: false}}}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: {host}\n",
            data.display()
        );
        let mut ca_file = None;
        let mut token = None;
        match kind {
            RegistryKind::Plain => {}
            RegistryKind::BasicTls => {
                make_test_ca(dir.path())?;
                std::fs::write(dir.path().join("htpasswd"), HTPASSWD).map_err(|e| e.to_string())?;
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    dir.path().join("reg.crt").display(),
                    dir.path().join("reg.key").display(),
                    dir.path().join("htpasswd").display()
                ));
                ca_file = Some(dir.path().join("ca.crt"));
            }
            RegistryKind::Token => {
                let ts = TokenServer::start(dir.path())?;
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: gantry-registry\n    issuer: gantry-token-issuer\n    rootcertbundle: {}\n",
                    ts.addr,
                    dir.path().join("token.crt").display()
                ));
                token = Some(ts);
            }
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, config).map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg_path)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start docker-registry: {e}"))?;
        let mut reg = Self {
            child,
            dir,
            host: host.clone(),
            kind,
            ca_file,
            token,
        };
        let addr = host.parse().map_err(|e| format!("{e}"))?;
        if !crate::wait_for_port(addr, Duration::from_secs(10)) {
            let log = reg.log();
            let _ = reg.child.kill();
            return Err(format!("docker-registry did not listen on {host}: {log}"));
        }
        Ok(reg)
    }

    /// The registry's log (access log included): what clients actually sent.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `METHOD path status` for each request in the access log (digests replaced by `<d>`).
    pub fn requests(&self) -> Vec<String> {
        let re = regex::Regex::new(r#""([A-Z]+) (/v2/[^ ]*) HTTP/1\.1" (\d+)"#).expect("re");
        let dg = regex::Regex::new(r"sha256(%3A|:)[0-9a-f]{64}").expect("re");
        self.log()
            .lines()
            .filter_map(|l| re.captures(l))
            .map(|c| format!("{} {} {}", &c[1], dg.replace_all(&c[2], "<d>"), &c[3]))
            .collect()
    }

    /// Scopes requested from the token server so far (token configuration only).
    pub fn token_requests(&self) -> Vec<Vec<String>> {
        self.token
            .as_ref()
            .map(|t| t.seen.lock().map(|s| s.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Whether clients must log in.
    pub fn needs_login(&self) -> bool {
        self.kind != RegistryKind::Plain
    }

    /// A `gantry-oci` client with this registry's credentials and CA.
    pub fn client(&self) -> gantry_oci::Client {
        let mut creds = gantry_oci::Credentials::new();
        if self.needs_login() {
            creds.insert(&self.host, USER, gantry_runtime::Secret::new(PASSWORD));
        }
        let mut cfg = gantry_oci::ClientConfig::default();
        if let Some(ca) = &self.ca_file {
            cfg.ca_pem.push(std::fs::read(ca).expect("ca"));
        }
        gantry_oci::Client::new(cfg, creds).expect("client")
    }

    /// Runs `skopeo inspect [--raw] docker://<reference>` with this registry's CA and login.
    pub fn skopeo_inspect(&self, reference: &str, raw: bool) -> Result<String, String> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect");
        if raw {
            cmd.arg("--raw");
        }
        self.skopeo_auth(&mut cmd, "");
        cmd.arg(format!("docker://{reference}"));
        let out = cmd.output().map_err(|e| format!("skopeo: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Adds `--<prefix>tls-verify`/`--<prefix>cert-dir`/`--<prefix>creds` for skopeo
    /// (`prefix` is "", "src-" or "dest-").
    pub fn skopeo_auth(&self, cmd: &mut Command, prefix: &str) {
        match &self.ca_file {
            Some(ca) => {
                let dir = ca.parent().expect("dir").join("skopeo-ca");
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::copy(ca, dir.join("ca.crt"));
                cmd.arg(format!("--{prefix}cert-dir")).arg(dir);
            }
            None => {
                cmd.arg(format!("--{prefix}tls-verify=false"));
            }
        }
        if self.needs_login() {
            cmd.arg(format!("--{prefix}creds"))
                .arg(format!("{USER}:{PASSWORD}"));
        }
    }

    /// Pushes a small image built from pseudo-random layers: one manifest per platform, an index
    /// when more than one. Returns the pushed (root) manifest digest.
    pub fn seed_image(&self, reference: &str, platforms: &[&str], layer_sizes: &[usize]) -> String {
        let client = self.client();
        let r = gantry_oci::ImageRef::parse(reference).expect("reference");
        let platforms: Vec<String> = platforms.iter().map(|s| s.to_string()).collect();
        let sizes = layer_sizes.to_vec();
        let tmp = self
            .dir
            .path()
            .join(format!("seed-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&tmp).expect("tmp");
        block_on(async move { seed(&client, &r, &platforms, &sizes, &tmp).await })
    }

    /// Pushes what signing tools leave next to an image: an OCI 1.1 referrer (a sigstore-bundle
    /// artifact whose `subject` is `subject`, with the `sha256-<hex>` fallback index kept up to date)
    /// and a cosign-style `sha256-<hex>.sig` tag. Returns `(referrer digest, sig tag)`.
    pub fn seed_signature(&self, repository: &str, subject: &str) -> (String, String) {
        let client = self.client();
        let r = gantry_oci::ImageRef::parse(repository).expect("reference");
        let subject = subject.to_string();
        block_on(async move {
            use gantry_oci::{BlobSource, Descriptor, RawManifest, manifest};
            let desc = client
                .head_manifest(&r, &subject)
                .await
                .expect("head")
                .expect("subject exists");
            let empty = bytes::Bytes::from_static(b"{}");
            let ed = Descriptor::new(manifest::OCI_EMPTY, &gantry_oci::digest::sha256(&empty), 2);
            client
                .put_blob(&r, &ed, &BlobSource::Bytes(empty))
                .await
                .expect("empty");
            let bundle = bytes::Bytes::from(format!("{{\"bundle-for\":\"{subject}\"}}"));
            let bd = Descriptor::new(
                "application/vnd.dev.sigstore.bundle.v0.3+json",
                &gantry_oci::digest::sha256(&bundle),
                bundle.len() as u64,
            );
            client
                .put_blob(&r, &bd, &BlobSource::Bytes(bundle))
                .await
                .expect("bundle");
            let art = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_MANIFEST,
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "config": ed,
                "layers": [bd],
                "subject": desc,
                "annotations": {"dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"},
            });
            let art = RawManifest::new(
                serde_json::to_vec(&art).expect("json"),
                manifest::OCI_MANIFEST,
            );
            gantry_oci::copy::push_referrer(&client, &r, &art)
                .await
                .expect("referrer");
            // cosign v2 style: an image tagged sha256-<hex>.sig
            let payload = bytes::Bytes::from(format!(
                "{{\"critical\":{{\"image\":{{\"docker-manifest-digest\":\"{subject}\"}}}}}}"
            ));
            let pd = Descriptor::new(
                "application/vnd.dev.cosign.simplesigning.v1+json",
                &gantry_oci::digest::sha256(&payload),
                payload.len() as u64,
            );
            client
                .put_blob(&r, &pd, &BlobSource::Bytes(payload))
                .await
                .expect("payload");
            let cfg = bytes::Bytes::from_static(br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#);
            let cd = Descriptor::new(
                manifest::OCI_CONFIG,
                &gantry_oci::digest::sha256(&cfg),
                cfg.len() as u64,
            );
            client
                .put_blob(&r, &cd, &BlobSource::Bytes(cfg))
                .await
                .expect("cfg");
            let sig =
                gantry_oci::image::image_manifest(&cd, &[pd], &Default::default()).expect("sig");
            let tag = format!("{}.sig", gantry_oci::copy::digest_tag(&subject));
            client.put_manifest(&r, &tag, &sig).await.expect("sig tag");
            (art.digest, tag)
        })
    }
}

/// Runs a future on a fresh current-thread runtime (for sync tests).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Deterministic pseudo-random bytes (xorshift), so seeded images differ per seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn seed(
    client: &gantry_oci::Client,
    r: &gantry_oci::ImageRef,
    platforms: &[String],
    sizes: &[usize],
    tmp: &Path,
) -> String {
    use gantry_oci::{BlobSource, Descriptor, Platform, image, layer, manifest};
    let mut children = Vec::new();
    let salt = u64::from(uuid::Uuid::new_v4().as_u128() as u32);
    for (pi, p) in platforms.iter().enumerate() {
        let platform = Platform::parse(p).expect("platform");
        let mut layers = Vec::new();
        let mut added = Vec::new();
        for (li, size) in sizes.iter().enumerate() {
            let src = tmp.join(format!("src-{pi}-{li}"));
            std::fs::create_dir_all(&src).expect("mkdir");
            std::fs::write(
                src.join(format!("data-{li}.bin")),
                noise(salt + (pi * 100 + li) as u64, *size),
            )
            .expect("write");
            let out = tmp.join(format!("layer-{pi}-{li}.tgz"));
            let built = layer::build_layer(
                &[layer::LayerSpec {
                    src,
                    dest: format!("/l{li}"),
                }],
                &layer::LayerOptions {
                    level: 1,
                    ..Default::default()
                },
                &out,
            )
            .expect("layer");
            let d = Descriptor::new(manifest::OCI_LAYER_GZIP, &built.digest, built.size);
            client
                .put_blob(r, &d, &BlobSource::File(out))
                .await
                .expect("push layer");
            added.push(image::AddedLayer {
                diff_id: built.diff_id,
                created_by: format!("seed {li}"),
            });
            layers.push(d);
        }
        let cfg = image::build_config(
            None,
            &platform,
            &image::ConfigEdit::default(),
            &added,
            &image::rfc3339(0),
        )
        .expect("config");
        let cd = Descriptor::new(
            manifest::OCI_CONFIG,
            &gantry_oci::digest::sha256(&cfg),
            cfg.len() as u64,
        );
        client
            .put_blob(r, &cd, &BlobSource::Bytes(cfg.into()))
            .await
            .expect("push config");
        let m = image::image_manifest(&cd, &layers, &Default::default()).expect("manifest");
        client
            .put_manifest(r, &m.digest, &m)
            .await
            .expect("push manifest");
        let mut desc = m.descriptor();
        desc.platform = Some(platform);
        children.push((desc, m));
    }
    let root = if children.len() == 1 {
        children.remove(0).1
    } else {
        let descs: Vec<_> = children.iter().map(|c| c.0.clone()).collect();
        let idx = image::image_index(&descs, &Default::default()).expect("index");
        client
            .put_manifest(r, &idx.digest, &idx)
            .await
            .expect("push index");
        idx
    };
    if let Some(tag) = &r.tag {
        client.put_manifest(r, tag, &root).await.expect("tag");
    }
    root.digest
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token server for distribution's `auth.token`: issues ES256 JWTs for the requested scopes
/// to [`USER`]/[`PASSWORD`] (and pull-only tokens to anonymous callers), answers 401 to wrong
/// credentials, and records every request's scopes.
struct TokenServer {
    addr: String,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TokenServer {
    fn start(dir: &Path) -> Result<Self, String> {
        run(Command::new("openssl").current_dir(dir).args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=gantry-token-issuer",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
        ]))?;
        run(Command::new("openssl").current_dir(dir).args([
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "token.key",
            "-outform",
            "DER",
            "-out",
            "token.pk8",
        ]))?;
        run(Command::new("openssl").current_dir(dir).args([
            "x509",
            "-in",
            "token.crt",
            "-outform",
            "DER",
            "-out",
            "token.der",
        ]))?;
        let pk8 = std::fs::read(dir.join("token.pk8")).map_err(|e| e.to_string())?;
        let der = std::fs::read(dir.join("token.der")).map_err(|e| e.to_string())?;
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pk8,
            &rng,
        )
        .map_err(|e| format!("token key: {e}"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener
            .local_addr()
            .map_err(|e| e.to_string())?
            .to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::new(TokenState {
            key,
            rng,
            x5c: base64::engine::general_purpose::STANDARD.encode(der),
            seen: seen.clone(),
        });
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new()
                    .route("/token", axum::routing::get(token_handler))
                    .with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(Self {
            addr,
            seen,
            _shutdown: tx,
        })
    }
}

struct TokenState {
    key: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    x5c: String,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
}

async fn token_handler(
    axum::extract::State(st): axum::extract::State<Arc<TokenState>>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let q = q.unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect();
    let scopes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let service = pairs
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if let Ok(mut s) = st.seen.lock() {
        s.push(scopes.clone());
    }
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let logged_in = match auth {
        None => false,
        Some(a) => {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
            );
            if a != want {
                return (
                    http::StatusCode::UNAUTHORIZED,
                    "{\"details\":\"wrong credentials\"}",
                )
                    .into_response();
            }
            true
        }
    };
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (t, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<&str> = actions
                .split(',')
                .filter(|a| logged_in || *a == "pull")
                .collect();
            Some(serde_json::json!({"type": t, "name": name, "actions": actions}))
        })
        .collect();
    let now = chrono::Utc::now().timestamp();
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [st.x5c]});
    let claims = serde_json::json!({
        "iss": "gantry-token-issuer", "sub": if logged_in { USER } else { "" }, "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid::Uuid::new_v4().to_string(),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let Ok(sig) = st.key.sign(&st.rng, signing_input.as_bytes()) else {
        return (http::StatusCode::INTERNAL_SERVER_ERROR, "sign").into_response();
    };
    let token = format!("{signing_input}.{}", b64(sig.as_ref()));
    axum::Json(serde_json::json!({"token": token, "access_token": token, "expires_in": 300, "issued_at": chrono::Utc::now().to_rfc3339()}))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_configs_answer() {
        for kind in [
            RegistryKind::Plain,
            RegistryKind::BasicTls,
            RegistryKind::Token,
        ] {
            let reg = match Registry::start(kind) {
                Ok(r) => r,
                Err(e) => crate::skip!("{e}"),
            };
            let d = reg.seed_image(
                &format!("{}/seed/img:1", reg.host),
                &["linux/amd64"],
                &[1000],
            );
            let raw = reg
                .skopeo_inspect(&format!("{}/seed/img:1", reg.host), true)
                .expect("inspect");
            assert_eq!(gantry_oci::digest::sha256(raw.as_bytes()), d, "{kind:?}");
            if kind == RegistryKind::Token {
                assert!(!reg.token_requests().is_empty());
            }
        }
    }
}
