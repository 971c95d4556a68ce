//! Reading PEM certificates and PKCS#8 private keys from files into DER.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// A PEM file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct PemError {
    /// The file.
    pub path: String,
    /// What was wrong.
    pub reason: String,
}

fn error(path: &Path, reason: impl ToString) -> PemError {
    PemError {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// All certificates in a PEM file, in file order; at least one.
pub fn certificates(path: &Path) -> Result<Vec<Vec<u8>>, PemError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(path, e))?
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(path, e))?;
    if certs.is_empty() {
        return Err(error(path, "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The first certificate of each file, for lists of single-certificate files.
pub fn first_certificates(paths: &[impl AsRef<Path>]) -> Result<Vec<Vec<u8>>, PemError> {
    paths
        .iter()
        .map(|p| certificates(p.as_ref()).map(|mut c| c.swap_remove(0)))
        .collect()
}

/// The PKCS#8 private key in a PEM file (`-----BEGIN PRIVATE KEY-----`).
pub fn pkcs8_key(path: &Path) -> Result<Vec<u8>, PemError> {
    PrivatePkcs8KeyDer::from_pem_file(path)
        .map(|k| k.secret_pkcs8_der().to_vec())
        .map_err(|e| error(path, e))
}
