//! Certificates for a database that speaks TLS: a certificate authority made for it and one
//! certificate for every host its shards run on.

use std::path::Path;

use orc_core::{Error, Result, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The files [`generate`] writes, inside its directory.
pub const CA_FILE: &str = "ca.crt";
/// The shards' certificate.
pub const CERT_FILE: &str = "shard.crt";
/// The shards' private key.
pub const KEY_FILE: &str = "shard.key";

fn failed(what: &str, e: rcgen::Error) -> Error {
    Error::Database(format!("generating the {what} for TLS: {e}"))
}

/// Make a certificate authority (`ca.crt`; its key is never written, so it signs nothing
/// else) and a certificate with its key (`shard.crt`, `shard.key`) valid for `hosts` (names
/// or IP addresses) as server and client, in the private directory `dir` (created `0700`;
/// every file `0600`). ECDSA P-256 keys from the operating system's random source.
pub fn generate(dir: &Path, hosts: &[String], name: &str) -> Result<TlsFiles> {
    crate::private_dir(dir)?;
    let mut ca =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| failed("authority", e))?;
    ca.distinguished_name
        .push(DnType::CommonName, format!("orc database {name} authority"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(|e| failed("authority key", e))?;
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| failed("authority", e))?;

    let mut names: Vec<String> = hosts.to_vec();
    names.sort();
    names.dedup();
    let mut shard = CertificateParams::new(names).map_err(|e| failed("certificate", e))?;
    shard
        .distinguished_name
        .push(DnType::CommonName, format!("orc database {name}"));
    shard.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    shard.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().map_err(|e| failed("key", e))?;
    let cert = shard
        .signed_by(&key, &issuer)
        .map_err(|e| failed("certificate", e))?;

    let files = TlsFiles {
        cert: dir.join(CERT_FILE),
        key: dir.join(KEY_FILE),
        ca: dir.join(CA_FILE),
    };
    crate::write_private(&files.key, key.serialize_pem().as_bytes())?;
    crate::write_private(&files.cert, cert.pem().as_bytes())?;
    crate::write_private(&files.ca, issuer.pem().as_bytes())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn certificates_are_private_pem_files() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("tls");
        let f = generate(&dir, &["127.0.0.1".into(), "node-1".into()], "db").unwrap();
        for p in [&f.cert, &f.key, &f.ca] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let key = std::fs::read_to_string(&f.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let cert = std::fs::read_to_string(&f.cert).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        // Host names that cannot be in a certificate are an error, not a panic.
        assert!(generate(&dir, &["nöde".into()], "db").is_err());
    }
}
