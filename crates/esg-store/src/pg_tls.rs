//! TLS to PostgreSQL, chosen by the URL's `sslmode` as libpq does.
//!
//! `tokio-postgres` itself understands `sslmode=disable|prefer|require`
//! and leaves the handshake to a connector; this module supplies one
//! (rustls with the *ring* provider, through `tokio-postgres-rustls`) and
//! adds libpq's verifying modes, which `tokio-postgres` does not parse:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | not checked |
//! | `require` | always | not checked; with `sslrootcert`, checked as `verify-ca` (libpq's rule) |
//! | `verify-ca` | always | chain to a root in `sslrootcert` |
//! | `verify-full` | always | chain, and the host name (or IP) in the URL matches the certificate |
//!
//! `sslrootcert=FILE` names a PEM file of trusted roots (default
//! `~/.postgresql/root.crt`, as libpq); `sslrootcert=system` uses the
//! operating system's bundle (`/etc/ssl/certs/ca-certificates.crt`).
//! Client certificates (`sslcert`, `sslkey`) are refused with a clear error
//! rather than ignored. Why rustls rather than OpenSSL: no system library
//! at build or run time (the image stays `distroless`-friendly), and *ring*
//! builds with the C compiler already needed for SQLite.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, certificate not checked.
    Prefer,
    /// TLS always, certificate not checked (unless a root file is named).
    Require,
    /// TLS always, certificate chain checked.
    VerifyCa,
    /// TLS always, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Option<SslMode> {
        Some(match v {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// What the connection string asks for, and the string `tokio-postgres`
/// is given (our parameters removed, the verifying modes spelt `require`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRequest {
    /// The connection string for `tokio_postgres::Config::from_str`.
    pub cleaned: String,
    /// `sslmode` (libpq's default `prefer` when absent).
    pub mode: SslMode,
    /// `sslrootcert`, when given.
    pub root_cert: Option<String>,
}

/// Splits the TLS parameters out of a `postgres://` URL or a libpq
/// `key=value` string.
pub fn parse(url: &str) -> Result<TlsRequest, StoreError> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<Option<String>, StoreError> {
        match key {
            "sslmode" => {
                let m = SslMode::parse(value).ok_or_else(|| {
                    StoreError::Config(format!(
                        "sslmode={value} is not one of disable, prefer, require, verify-ca, verify-full"
                    ))
                })?;
                mode = Some(m);
                // tokio-postgres knows disable/prefer/require; the verifying
                // modes are `require` plus our certificate check.
                let passed = match m {
                    SslMode::Disable => "disable",
                    SslMode::Prefer => "prefer",
                    _ => "require",
                };
                Ok(Some(format!("sslmode={passed}")))
            }
            "sslrootcert" => {
                root_cert = Some(value.to_string());
                Ok(None)
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                Err(StoreError::Config(format!(
                    "{key} is not supported (client certificates and CRLs): authenticate with a password, or terminate TLS in a proxy"
                )))
            }
            _ => Ok(Some(String::new())), // kept as written
        }
    };
    let cleaned = if let Some((base, query)) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .and_then(|_| url.split_once('?'))
    {
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match take(k, &percent_decode(v))? {
                Some(s) if s.is_empty() => kept.push(pair.to_string()),
                Some(s) => kept.push(s),
                None => {}
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else if url.contains("://") {
        url.to_string()
    } else {
        // key=value form (values with quotes or spaces are passed on as
        // written; tokio-postgres parses them).
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some((k, v)) if !v.starts_with('\'') => match take(k, v)? {
                    Some(s) if s.is_empty() => kept.push(word.to_string()),
                    Some(s) => kept.push(s),
                    None => {}
                },
                _ => kept.push(word.to_string()),
            }
        }
        kept.join(" ")
    };
    Ok(TlsRequest {
        cleaned,
        mode: mode.unwrap_or(SslMode::Prefer),
        root_cert,
    })
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The root file libpq would use: `sslrootcert`, `system`, else
/// `~/.postgresql/root.crt`.
fn root_file(named: Option<&str>) -> PathBuf {
    match named {
        Some("system") => PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".postgresql/root.crt"),
    }
}

fn load_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let bad = |why: String| {
        StoreError::Config(format!(
            "sslrootcert {}: {why} (a PEM file of trusted root certificates)",
            path.display()
        ))
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(roots)
}

/// The connector for `req`: checks nothing for `prefer`/`require` (libpq's
/// behaviour: encryption without authentication), the chain for
/// `verify-ca` (and `require` with a root file), chain and name for
/// `verify-full`.
pub fn connector(req: &TlsRequest) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check_chain = match req.mode {
        SslMode::Disable | SslMode::Prefer => false,
        SslMode::Require => req.root_cert.is_some(),
        SslMode::VerifyCa | SslMode::VerifyFull => true,
    };
    let verifier: Arc<dyn ServerCertVerifier> = if check_chain {
        let roots = load_roots(&root_file(req.root_cert.as_deref()))?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| StoreError::Config(format!("TLS verifier: {e}")))?;
        Arc::new(Checked {
            webpki,
            check_name: req.mode == SslMode::VerifyFull,
        })
    } else {
        Arc::new(Unchecked(provider.clone()))
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `verify-ca` / `verify-full`: the web PKI check of the chain against the
/// named roots; a name mismatch is forgiven for `verify-ca`.
#[derive(Debug)]
struct Checked {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `prefer` / `require`: any certificate (libpq's meaning of these modes),
/// but the handshake's signatures are still verified, so the session key
/// belongs to whoever holds the presented certificate.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_become_require_and_our_parameters_are_removed() {
        let r = parse("postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x")
            .unwrap();
        assert_eq!(
            r.cleaned,
            "postgres://u:p@h:5/db?sslmode=require&application_name=x"
        );
        assert_eq!(r.mode, SslMode::VerifyFull);
        assert_eq!(r.root_cert.as_deref(), Some("/tmp/ca.pem"));

        let r = parse("postgres://h/db").unwrap();
        assert_eq!(
            (r.cleaned.as_str(), r.mode),
            ("postgres://h/db", SslMode::Prefer)
        );
        let r = parse("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!(r.cleaned, "postgres://h/db");

        let r = parse("host=h dbname=d sslmode=verify-ca sslrootcert=/x.pem").unwrap();
        assert_eq!(r.cleaned, "host=h dbname=d sslmode=require");
        assert_eq!(r.mode, SslMode::VerifyCa);
    }

    #[test]
    fn unknown_modes_and_client_certificates_are_refused_by_name() {
        let e = parse("postgres://h/db?sslmode=verify")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=verify is not one of"), "{e}");
        let e = parse("postgres://h/db?sslcert=/c.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslcert is not supported"), "{e}");
    }

    #[test]
    fn a_missing_or_empty_root_file_is_named() {
        let req =
            parse("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").unwrap();
        let e = connector(&req).err().expect("refused").to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let req = parse(&format!(
            "postgres://h/db?sslmode=verify-ca&sslrootcert={}",
            empty.display()
        ))
        .unwrap();
        let e = connector(&req).err().expect("refused").to_string();
        assert!(e.contains("no certificate"), "{e}");
        // No root file needed when nothing is verified.
        assert!(connector(&parse("postgres://h/db?sslmode=require").unwrap()).is_ok());
    }
}
