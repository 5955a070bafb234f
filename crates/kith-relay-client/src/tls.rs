//! TLS for `https://` relays: rustls with the ring provider, Mozilla's root
//! certificates (webpki-roots), and optionally the PEM certificates of a
//! private authority. HTTP requests and the WebSocket share one
//! configuration. Nothing here reads the environment: a program maps its
//! own settings (the `kith` CLI: `KITH_CA_FILE`) into a [`Trust`].

use super::ClientError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Makes ring this process's default rustls provider, for other HTTPS
/// clients in the same program (a `reqwest::Client::new()`); the relay
/// client itself never needs it. Calling it again changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Which servers a client trusts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Trust(Arc<rustls::ClientConfig>);

impl Trust {
    /// Mozilla's roots, built once per process.
    pub fn mozilla_roots() -> Result<Self, ClientError> {
        static DEFAULT: OnceLock<Result<Trust, String>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| build(None).map(|c| Self(Arc::new(c))))
            .clone()
            .map_err(ClientError::Tls)
    }

    /// Mozilla's roots plus every certificate in the PEM file `ca_file`
    /// (none: the same as [`Trust::mozilla_roots`]).
    pub fn with_ca_file(ca_file: Option<&Path>) -> Result<Self, ClientError> {
        match ca_file {
            None => Self::mozilla_roots(),
            Some(path) => Ok(Self(Arc::new(build(Some(path)).map_err(ClientError::Tls)?))),
        }
    }

    pub(crate) fn config(&self) -> Arc<rustls::ClientConfig> {
        self.0.clone()
    }
}

fn build(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| named(&e))? {
            roots
                .add(cert.map_err(|e| named(&e))?)
                .map_err(|e| named(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only: requests and the WebSocket upgrade.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
