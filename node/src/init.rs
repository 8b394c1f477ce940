//! `custos-node init`: creates a data directory with the cluster's archive key, a
//! default config and a first administrator token (shown once, stored only as a hash).

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{NodeConfig, SeedCamera, CONFIG_FILE_NAME};
use crate::error::{Error, Result};

/// File holding the first administrator's token hash until the node commits it to Raft.
pub const BOOTSTRAP_FILE: &str = "bootstrap-admin.json";

/// Options for `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub node_id: u64,
    pub segment_target_ms: u64,
    pub cameras: Vec<SeedCamera>,
    /// Serve the client API without TLS (local development only).
    pub insecure_plaintext: bool,
}

/// Everything `init` created, as printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
    pub node_id: u64,
    pub listen: SocketAddr,
    pub archive_recipient: String,
    pub archive_identity_file: PathBuf,
    /// The cluster CA that clients verify this node against (`--ca` / `CUSTOS_CA`);
    /// absent when the node serves plaintext.
    pub ca_file: Option<PathBuf>,
    /// Names and addresses the node's certificate is valid for.
    pub tls_names: Vec<String>,
    pub admin_user: String,
    /// Shown once; only its BLAKE3 is stored.
    pub admin_token: String,
}

/// The first administrator, waiting to be committed at first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub name: String,
    pub token_blake3: String,
}

/// A new random bearer token (256 bits).
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    format!("cst_{}", hex::encode(b))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io("write", path, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", path, e))
}

/// Creates the data directory. Refuses a directory that already holds a node.
pub fn init(opts: &InitOptions) -> Result<InitReport> {
    let dir = &opts.data_dir;
    let cfg_path = dir.join(CONFIG_FILE_NAME);
    if cfg_path.exists() {
        return Err(Error::AlreadyExists { what: "node data directory (custos.toml)", id: dir.display().to_string() });
    }
    fs::create_dir_all(dir.join("keys")).map_err(|e| Error::io("create directory", dir.join("keys"), e))?;
    let dir = fs::canonicalize(dir).map_err(|e| Error::io("resolve", dir, e))?;

    let id = crate::segment::seal::generate_identity();
    let identity_rel = PathBuf::from("keys/archive.age");
    write_private(
        &dir.join(&identity_rel),
        &format!(
            "# Custos cluster archive identity. Decrypts every blob: keep it secret.\n# recipient: {}\n{}\n",
            id.recipient, id.secret
        ),
    )?;

    let (tls, tls_names) = if opts.insecure_plaintext {
        (None, vec![])
    } else {
        let pki = crate::tls::create_pki(opts.node_id, opts.listen)?;
        let k = dir.join("keys");
        write_private(&k.join("ca.key"), &pki.ca_key_pem)?;
        write_private(&k.join("node.key"), &pki.node_key_pem)?;
        crate::segment::store::write_file_atomic(&k.join("ca.pem"), pki.ca_cert_pem.as_bytes())?;
        crate::segment::store::write_file_atomic(&k.join("node.pem"), pki.node_cert_pem.as_bytes())?;
        let tls = crate::config::TlsConfig {
            cert_file: PathBuf::from("keys/node.pem"),
            key_file: PathBuf::from("keys/node.key"),
            ca_file: PathBuf::from("keys/ca.pem"),
        };
        (Some(tls), pki.node_names)
    };

    let token = new_token();
    let boot = Bootstrap { name: "admin".into(), token_blake3: blake3::hash(token.as_bytes()).to_hex().to_string() };
    write_private(&dir.join(BOOTSTRAP_FILE), &serde_json::to_string(&boot).expect("json"))?;

    let cfg = NodeConfig {
        node_id: opts.node_id,
        listen: opts.listen,
        data_dir: PathBuf::new(),
        segment_target_ms: opts.segment_target_ms,
        archive_recipients: vec![id.recipient.clone()],
        archive_identity_file: identity_rel.clone(),
        insecure_plaintext: opts.insecure_plaintext,
        tls: tls.clone(),
        cameras: opts.cameras.clone(),
    };
    let mut probe = cfg.clone();
    probe.data_dir = dir.clone();
    probe.validate().map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let text = format!(
        "# Custos node configuration; every field is described in docs/config.md.\n{}",
        toml::to_string_pretty(&cfg).map_err(|e| Error::Internal(e.to_string()))?
    );
    crate::segment::store::write_file_atomic(&dir.join(CONFIG_FILE_NAME), text.as_bytes())?;

    Ok(InitReport {
        config_file: dir.join(CONFIG_FILE_NAME),
        archive_identity_file: dir.join(identity_rel),
        ca_file: tls.map(|t| dir.join(t.ca_file)),
        tls_names,
        data_dir: dir,
        node_id: opts.node_id,
        listen: opts.listen,
        archive_recipient: id.recipient,
        admin_user: boot.name,
        admin_token: token,
    })
}
