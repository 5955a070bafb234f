//! TLS for `https://` relays: rustls with the ring provider, Mozilla's root
//! certificates (webpki-roots), and the PEM certificates named by
//! `KITH_CA_FILE` (a relay with a private or self-signed authority).
//! HTTP requests and the WebSocket share one configuration.

use super::ClientError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::{Arc, OnceLock};

/// The environment variable naming extra trusted certificates (PEM).
pub const CA_FILE_VAR: &str = "KITH_CA_FILE";

/// Makes ring this process's default rustls provider, for other HTTPS
/// clients in the same program (a `reqwest::Client::new()`); the relay
/// client itself never needs it. Calling it again changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn build() -> Result<rustls::ClientConfig, String> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = std::env::var_os(CA_FILE_VAR).filter(|f| !f.is_empty()) {
        let path = std::path::PathBuf::from(file);
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| format!("{CA_FILE_VAR}={}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{CA_FILE_VAR}={}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{CA_FILE_VAR}={}: {e}", path.display()))?;
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

/// The client TLS configuration, built once per process.
pub(crate) fn config() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| build().map(Arc::new))
        .clone()
        .map_err(ClientError::Tls)
}
