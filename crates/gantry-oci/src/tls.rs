//! TLS for registry connections: certificates are verified against the platform's trust store
//! (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle) plus the `registry-ca`
//! certificates, exactly as reqwest's own rustls set-up does, except that the platform store is
//! read on the first HTTPS handshake instead of when the client is built. A run that only talks
//! to plain-HTTP registries (loopback, `insecure-registries`) never reads the ~150 system roots,
//! which cost 3–4 ms of a 30 ms promotion.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

use crate::Error;

/// The platform verifier, built on first use.
#[derive(Debug)]
struct LazyPlatformVerifier {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<Verifier, rustls::Error>>,
}

impl LazyPlatformVerifier {
    fn get(&self) -> Result<&Verifier, rustls::Error> {
        self.inner
            .get_or_init(|| {
                Verifier::new_with_extra_roots(self.extra.iter().cloned(), self.provider.clone())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.get()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // Asked for every ClientHello; the provider knows without loading any root.
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The certificates in `pem`, each checked as a trust anchor; an error when there is none.
fn ca_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not PEM: {e}"))?;
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| e.to_string())?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(certs)
}

/// Checks that `pem` holds at least one certificate usable as a trust anchor; returns how many,
/// or why not.
pub fn check_ca_pem(pem: &[u8]) -> Result<usize, String> {
    ca_certs(pem).map(|c| c.len())
}

/// The rustls configuration for registry connections, trusting the platform's roots and the
/// PEM certificates in `ca_pem`. A `ca_pem` that holds no valid certificate is an error now,
/// not at the first handshake.
pub(crate) fn client_config(ca_pem: &[Vec<u8>]) -> Result<rustls::ClientConfig, Error> {
    let invalid = |reason: String| Error::Invalid {
        what: "CA certificate".into(),
        reason,
    };
    let mut extra = Vec::new();
    for pem in ca_pem {
        // Checked as trust anchors now, as the verifier will, so a bad file fails before any request.
        extra.extend(ca_certs(pem).map_err(invalid)?);
    }
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = Arc::new(LazyPlatformVerifier {
        extra,
        provider: provider.clone(),
        inner: OnceLock::new(),
    });
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What reqwest sets for a client with HTTP/2 enabled.
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
