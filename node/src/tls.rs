//! The cluster's certificate authority and node certificates.
//!
//! `custos-node init` creates a CA (`keys/ca.pem`, `keys/ca.key`) and a certificate for
//! the node signed by it (`keys/node.pem`, `keys/node.key`), valid for `localhost`,
//! `127.0.0.1`, the machine's host name and the listen address. Clients verify the node
//! against `ca.pem`; the cluster issue uses the same CA for mutual TLS between nodes.

use std::net::SocketAddr;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

use crate::error::{Error, Result};

/// PEM texts of a new CA and one node certificate.
pub struct NewPki {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
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

/// Creates a cluster CA and a certificate for node `node_id` listening on `listen`.
pub fn create_pki(node_id: u64, listen: SocketAddr) -> Result<NewPki> {
    let ca_key = KeyPair::generate().map_err(pki_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
    ca.distinguished_name.push(DnType::CommonName, "Custos cluster CA");
    ca.distinguished_name.push(DnType::OrganizationName, "Custos");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).map_err(pki_err)?;

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Some(h) = host_name() {
        names.push(h);
    }
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    let node_key = KeyPair::generate().map_err(pki_err)?;
    let mut node = CertificateParams::new(names.clone()).map_err(pki_err)?;
    node.distinguished_name.push(DnType::CommonName, format!("custos node {node_id}"));
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let node_cert = node.signed_by(&node_key, &ca_cert, &ca_key).map_err(pki_err)?;
    Ok(NewPki {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        node_cert_pem: node_cert.pem(),
        node_key_pem: node_key.serialize_pem(),
        node_names: names,
    })
}
