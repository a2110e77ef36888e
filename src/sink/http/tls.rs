//! Certificate verification of the HTTPS sinks: on, always, against Mozilla's root
//! certificates, plus the certificate authorities the application adds (a private CA in front of
//! a self-hosted Sentry, or a TLS-inspecting proxy).
//!
//! There is no switch that turns verification off.

use std::fmt;
use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Root certificates added to Mozilla's, parsed from PEM.
#[derive(Clone, Default)]
pub(crate) struct ExtraRoots(Arc<Vec<Certificate<'static>>>);

impl ExtraRoots {
    /// Adds every certificate of `pem` (one or more `-----BEGIN CERTIFICATE-----` blocks).
    pub(crate) fn add_pem(&self, pem: &[u8]) -> Result<ExtraRoots, CertificateError> {
        let mut certificates = self.0.as_ref().clone();
        let before = certificates.len();
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(PemItem::Certificate(certificate)) => certificates.push(certificate),
                Ok(_) => {}
                Err(error) => return Err(CertificateError(format!("invalid PEM: {error}"))),
            }
        }
        if certificates.len() == before {
            return Err(CertificateError("no certificate in the PEM data".to_owned()));
        }
        Ok(ExtraRoots(Arc::new(certificates)))
    }

    /// The TLS settings of an agent: Mozilla's roots, plus the added ones when there are any.
    pub(crate) fn tls_config(&self) -> TlsConfig {
        let roots = if self.0.is_empty() {
            RootCerts::WebPki
        } else {
            let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned());
            RootCerts::from(mozilla.chain(self.0.iter().cloned()))
        };
        TlsConfig::builder().root_certs(roots).build()
    }
}

impl fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} added root certificate(s)", self.0.len())
    }
}

/// Root certificates that could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateError(String);

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "root certificates: {}", self.0)
    }
}

impl std::error::Error for CertificateError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_a_certificate_is_refused_with_a_reason() {
        let roots = ExtraRoots::default();
        let error = roots.add_pem(b"not a certificate").unwrap_err();
        assert_eq!(error.to_string(), "root certificates: no certificate in the PEM data");
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(roots.add_pem(broken).unwrap_err().to_string().contains("invalid PEM"));
        assert_eq!(format!("{roots:?}"), "0 added root certificate(s)");
    }
}
