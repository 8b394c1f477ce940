//! The cluster's certificate authority and node certificates.
//!
//! `custos-node init` creates a CA (`keys/ca.pem`, `keys/ca.key`) and a certificate for
//! the node signed by it (`keys/node.pem` holds the node certificate followed by the CA
//! certificate, `keys/node.key` its key). Certificates are valid for `localhost`,
//! `127.0.0.1`, the machine's host name and the listen address, for both server and
//! client authentication: the same certificate serves clients and authenticates the
//! node to its peers (mutual TLS).
//!
//! Every node keeps the CA key so that any of them can admit a new node; a node is
//! trusted with the archive identity, which already decrypts all footage, so the CA key
//! adds no new exposure.
//!
//! Joining: the join token carries a fingerprint of the CA certificate. The joining
//! node completes a TLS handshake without verification only to read the certificate
//! chain the cluster presents, keeps the certificate whose fingerprint matches the
//! token, and then talks to the cluster over TLS verified against it.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::error::{Error, Result};

/// PEM texts of a new CA and one node certificate.
pub struct NewPki {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    /// The node certificate followed by the CA certificate.
    pub node_cert_pem: String,
    pub node_key_pem: String,
    /// Names and addresses the node certificate is valid for.
    pub node_names: Vec<String>,
}

fn pki_err(e: rcgen::Error) -> Error {
    Error::Internal(format!("creating certificates: {e}"))
}

/// The host name, if the kernel reports one.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// The CA's distinguished name and constraints. Re-deriving the issuer from these and
/// the CA key yields certificates that chain to the original CA certificate.
fn ca_params() -> Result<CertificateParams> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
    ca.distinguished_name.push(DnType::CommonName, "Custos cluster CA");
    ca.distinguished_name.push(DnType::OrganizationName, "Custos");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(ca)
}

/// Names a node certificate covers for a node reachable at `host`.
fn node_names(host: Option<std::net::IpAddr>, host_name_extra: Option<&str>) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Some(h) = host_name() {
        names.push(h);
    }
    if let Some(ip) = host {
        if !ip.is_unspecified() && !ip.is_loopback() {
            names.push(ip.to_string());
        }
    }
    if let Some(h) = host_name_extra {
        if !names.iter().any(|n| n == h) {
            names.push(h.to_string());
        }
    }
    names
}

fn sign_node(
    node_id: u64,
    names: &[String],
    (ca, ca_pem): (&Certificate, &str),
    ca_key: &KeyPair,
) -> Result<(String, String)> {
    let node_key = KeyPair::generate().map_err(pki_err)?;
    let mut node = CertificateParams::new(names.to_vec()).map_err(pki_err)?;
    node.distinguished_name.push(DnType::CommonName, format!("{NODE_CN_PREFIX}{node_id}"));
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = node.signed_by(&node_key, ca, ca_key).map_err(pki_err)?;
    Ok((format!("{}{}", cert.pem(), ca_pem), node_key.serialize_pem()))
}

/// Creates a cluster CA and a certificate for node `node_id` listening on `listen`.
pub fn create_pki(node_id: u64, listen: SocketAddr) -> Result<NewPki> {
    let ca_key = KeyPair::generate().map_err(pki_err)?;
    let ca_cert = ca_params()?.self_signed(&ca_key).map_err(pki_err)?;
    let names = node_names(Some(listen.ip()), None);
    let (node_cert_pem, node_key_pem) = sign_node(node_id, &names, (&ca_cert, &ca_cert.pem()), &ca_key)?;
    Ok(NewPki {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        node_cert_pem,
        node_key_pem,
        node_names: names,
    })
}

/// Issues a certificate for a joining node reachable at `addr` (`host:port`), signed by
/// the cluster CA (`ca_pem`, whose key is `ca_key_pem`). Returns the chain PEM (node
/// certificate, then `ca_pem`) and the key PEM.
pub fn issue_node_cert(ca_pem: &str, ca_key_pem: &str, node_id: u64, addr: &str) -> Result<(String, String)> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(pki_err)?;
    let ca = ca_params()?.self_signed(&ca_key).map_err(pki_err)?;
    let host = addr.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or(addr);
    let ip = host.parse().ok();
    let extra = if ip.is_none() { Some(host) } else { None };
    sign_node(node_id, &node_names(ip, extra), (&ca, ca_pem), &ca_key)
}

/// The common name every node certificate carries before its node id.
pub const NODE_CN_PREFIX: &str = "custos node ";

/// The node id a node certificate (DER) names in its subject common name
/// (`custos node N`). Refused: no or several common names, another name, id 0. The
/// certificate itself must already have been verified against the cluster CA.
pub fn node_id_of_cert(der: &[u8]) -> std::result::Result<u64, String> {
    let cns = subject_common_names(der).ok_or("the certificate cannot be read (malformed DER)")?;
    let [cn] = cns.as_slice() else {
        return Err(format!("the certificate has {} subject common names; a node certificate has one", cns.len()));
    };
    cn.strip_prefix(NODE_CN_PREFIX)
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&id| id > 0 && cn.len() == NODE_CN_PREFIX.len() + id.to_string().len())
        .ok_or_else(|| format!("the certificate's common name {cn:?} does not name a node (`{NODE_CN_PREFIX}N`)"))
}

/// One DER element: (tag, contents, what follows). Low tag numbers and definite
/// lengths only, which is all X.509 DER uses.
fn der_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n].iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        b = &b[n..];
        len
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// Every element of a constructed element's contents.
fn der_items(mut b: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, c, rest) = der_tlv(b)?;
        out.push((t, c));
        b = rest;
    }
    Some(out)
}

/// BLAKE3 of a DER certificate's SubjectPublicKeyInfo contents: what the catalog pins
/// for each node (`Command::PinNodeKey`).
pub fn cert_key_hash(der: &[u8]) -> std::result::Result<[u8; 32], String> {
    let spki = tbs_items(der).and_then(|items| items.get(5).filter(|(t, _)| *t == 0x30).map(|(_, c)| *c));
    spki.map(|c| *blake3::hash(c).as_bytes()).ok_or_else(|| "the certificate cannot be read (malformed DER)".into())
}

/// The elements of a DER certificate's TBSCertificate after the optional version:
/// serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ….
fn tbs_items(der: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    const SEQ: u8 = 0x30;
    let (SEQ, cert, _) = der_tlv(der)? else { return None };
    let (SEQ, tbs, _) = der_tlv(cert)? else { return None };
    let mut items = der_items(tbs)?;
    if items.first()?.0 == 0xa0 {
        items.remove(0); // [0] version
    }
    Some(items)
}

/// The subject common names (OID 2.5.4.3) of a DER certificate.
fn subject_common_names(der: &[u8]) -> Option<Vec<String>> {
    const SEQ: u8 = 0x30;
    let items = tbs_items(der)?;
    let (SEQ, subject) = *items.get(4)? else { return None };
    let mut cns = Vec::new();
    for (set_tag, set) in der_items(subject)? {
        if set_tag != 0x31 {
            return None;
        }
        for (seq_tag, atv) in der_items(set)? {
            if seq_tag != SEQ {
                return None;
            }
            let parts = der_items(atv)?;
            let [(0x06, oid), (vtag, value)] = parts.as_slice() else { return None };
            if *oid == [0x55, 0x04, 0x03] {
                // UTF8String, PrintableString, IA5String
                if !matches!(*vtag, 0x0c | 0x13 | 0x16) {
                    return None;
                }
                cns.push(String::from_utf8(value.to_vec()).ok()?);
            }
        }
    }
    Some(cns)
}

/// Fingerprint of a CA certificate as carried in join tokens: the first 16 bytes of the
/// BLAKE3 of its DER encoding, in hex.
pub fn ca_fingerprint(ca_der: &[u8]) -> String {
    hex::encode(&blake3::hash(ca_der).as_bytes()[..16])
}

/// DER of the first certificate in a PEM text.
pub fn first_cert_der(pem: &str) -> Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    base64_decode(&body).ok_or_else(|| Error::InvalidArgument("no certificate in PEM text".into()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= u32::from(c) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((acc >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// PEM text of one DER certificate.
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Accepts any server certificate. Used only to read the chain a cluster presents
/// during join discovery; nothing secret is sent over that connection.
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects to `addr`, completes a TLS handshake, and returns the PEM of the presented
/// certificate whose fingerprint is `fingerprint`. Blocks.
pub fn discover_ca(addr: &str, fingerprint: &str) -> Result<String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost".to_string())
        .map_err(|e| Error::Internal(format!("TLS server name: {e}")))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?;
    let unreachable = |e: std::io::Error| Error::Unavailable(format!("cannot reach the cluster at {addr}: {e}"));
    let mut sock = std::net::TcpStream::connect(addr).map_err(unreachable)?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10))).map_err(unreachable)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| {
            Error::Unavailable(format!(
                "TLS handshake with {addr} failed: {e}. Is it a custos-node client API address, served with TLS?"
            ))
        })?;
    }
    let chain = conn.peer_certificates().unwrap_or_default();
    for der in chain {
        if ca_fingerprint(der) == fingerprint {
            return Ok(der_to_pem(der));
        }
    }
    Err(Error::InvalidArgument(format!(
        "the node at {addr} does not present the cluster CA named in the join token (fingerprint {fingerprint}); \
         check the address, or ask for a token from this cluster"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_issued_certs_chain_to_the_ca() {
        let pki = create_pki(1, "127.0.0.1:7400".parse().unwrap()).unwrap();
        let der = first_cert_der(&pki.ca_cert_pem).unwrap();
        assert_eq!(der_to_pem(&der), pki.ca_cert_pem.replace("\r\n", "\n"));
        // node.pem carries the CA after the node certificate.
        assert!(pki.node_cert_pem.ends_with(&pki.ca_cert_pem));
        let (chain, _key) = issue_node_cert(&pki.ca_cert_pem, &pki.ca_key_pem, 2, "10.1.2.3:7400").unwrap();
        assert!(chain.ends_with(&pki.ca_cert_pem));
        assert_eq!(ca_fingerprint(&der).len(), 32);
    }

    #[test]
    fn node_certificates_name_their_node_id_and_nothing_else_does() {
        let pki = create_pki(1, "127.0.0.1:7400".parse().unwrap()).unwrap();
        assert_eq!(node_id_of_cert(&first_cert_der(&pki.node_cert_pem).unwrap()), Ok(1));
        let (chain, _) = issue_node_cert(&pki.ca_cert_pem, &pki.ca_key_pem, 4242, "10.1.2.3:7400").unwrap();
        assert_eq!(node_id_of_cert(&first_cert_der(&chain).unwrap()), Ok(4242));
        // The CA's own certificate names no node.
        let e = node_id_of_cert(&first_cert_der(&pki.ca_cert_pem).unwrap()).unwrap_err();
        assert!(e.contains("Custos cluster CA"), "{e}");
        // Names that only look like a node's.
        let key = KeyPair::generate().unwrap();
        for cn in ["custos node 0", "custos node 01", "custos node 2 ", "custos node -2", "custos node2"] {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let der = p.self_signed(&key).unwrap().der().to_vec();
            assert!(node_id_of_cert(&der).is_err(), "{cn:?} accepted");
        }
        // Truncated or garbage DER is refused, never a panic.
        let der = first_cert_der(&pki.node_cert_pem).unwrap();
        for n in 0..der.len() {
            let _ = node_id_of_cert(&der[..n]);
        }
        assert!(node_id_of_cert(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(node_id_of_cert(b"not a certificate").is_err());
        // Two certificates for one node id, each with its own key, differ in key hash.
        let (again, _) = issue_node_cert(&pki.ca_cert_pem, &pki.ca_key_pem, 1, "127.0.0.1:7400").unwrap();
        let (a, b) = (first_cert_der(&pki.node_cert_pem).unwrap(), first_cert_der(&again).unwrap());
        assert_eq!(node_id_of_cert(&b), Ok(1));
        assert_ne!(cert_key_hash(&a).unwrap(), cert_key_hash(&b).unwrap());
        assert_eq!(cert_key_hash(&a).unwrap(), cert_key_hash(&a.clone()).unwrap());
        assert!(cert_key_hash(&a[..a.len() / 2]).is_err());
    }
}
