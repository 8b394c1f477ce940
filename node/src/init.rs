//! `custos-node init` founds a cluster: it creates a data directory with the cluster's
//! archive key, CA, a default config and a first administrator token (shown once, stored
//! only as a hash). `custos-node join` creates the data directory of a node that joins
//! an existing cluster with a single-use join token.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{NodeConfig, SeedCamera, TlsConfig, CONFIG_FILE_NAME};
use crate::error::{Error, Result};

/// File holding the first administrator's token hash until the node commits it to Raft.
pub const BOOTSTRAP_FILE: &str = "bootstrap-admin.json";

/// Where `init` leaves the offline recovery identity (relative to the data directory).
pub const RECOVERY_IDENTITY_FILE: &str = "keys/RECOVERY-move-offline.age";

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
    pub campus: String,
    /// Where Prometheus metrics are served (`None`: nowhere).
    pub metrics_listen: Option<SocketAddr>,
    /// Where the web console is served (`None`: nowhere).
    pub web_listen: Option<SocketAddr>,
    /// Accept `file://` and `test://` sources (demos and trials only).
    pub allow_test_sources: bool,
    /// The hospital's name for export receipts (`hospital`).
    pub hospital: String,
}

/// Everything `init` created, as printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
    pub node_id: u64,
    pub listen: SocketAddr,
    /// `http://ADDR/metrics` for Prometheus (absent: metrics are off).
    pub metrics_listen: Option<SocketAddr>,
    /// The web console (absent: off, or the node serves plaintext).
    pub web_url: Option<String>,
    pub archive_recipient: String,
    pub archive_identity_file: PathBuf,
    /// The offline recovery identity: a recipient of every blob and backup snapshot.
    /// Move it off the node to safe storage; `custos-node restore` needs it.
    pub recovery_identity_file: PathBuf,
    pub recovery_recipient: String,
    /// The cluster CA that clients verify this node against (`--ca` / `CUSTOS_CA`);
    /// absent when the node serves plaintext.
    pub ca_file: Option<PathBuf>,
    /// Names and addresses the node's certificate is valid for.
    pub tls_names: Vec<String>,
    pub admin_user: String,
    /// Shown once; only its BLAKE3 is stored.
    pub admin_token: String,
    /// The founding approver (leadership): the second person every change to a root of
    /// trust needs. Hand this token to them; shown once.
    pub approver_user: String,
    pub approver_token: String,
}

/// The first administrator, waiting to be committed at first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub name: String,
    pub token_blake3: String,
    /// The founding approver and their token's BLAKE3.
    pub approver: String,
    pub approver_token_blake3: String,
}

/// A new random bearer token (256 bits).
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    format!("cst_{}", hex::encode(b))
}

pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    write_private_bytes(path, text.as_bytes())
}

pub(crate) fn write_private_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", path, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", path, e))
}

/// Creates the data directory. Refuses a directory that already holds a node.
pub fn init(opts: &InitOptions) -> Result<InitReport> {
    let dir = &opts.data_dir;
    let cfg_path = dir.join(CONFIG_FILE_NAME);
    if cfg_path.exists() {
        return Err(Error::AlreadyExists { what: "node data directory (custos.toml)", id: dir.display().to_string() });
    }
    // Refuse a seed camera before anything is written.
    for (i, cam) in opts.cameras.iter().enumerate() {
        crate::ingest::Source::parse(&cam.source)
            .and_then(|src| crate::ingest::check_allowed(&src, opts.allow_test_sources))
            .map_err(|p| Error::InvalidArgument(format!("--camera {} (camera[{i}].source): {p}", cam.id)))?;
    }
    crate::create_private_dir(dir)?;
    crate::create_private_dir(&dir.join("keys"))?;
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

    // The recovery identity never goes back into the cluster: only its recipient does.
    let recovery = crate::segment::seal::generate_identity();
    let recovery_rel = PathBuf::from(RECOVERY_IDENTITY_FILE);
    write_private(
        &dir.join(&recovery_rel),
        &format!(
            "# Custos OFFLINE RECOVERY identity. It decrypts every blob and backup snapshot.\n\
             # Move this file to offline storage (a safe, not this machine) and delete it here;\n\
             # `custos-node restore --recovery-identity FILE` needs it to rebuild the cluster.\n\
             # recipient: {}\n{}\n",
            recovery.recipient, recovery.secret
        ),
    )?;

    let (tls, tls_names) = if opts.insecure_plaintext {
        (None, vec![])
    } else {
        let pki = crate::tls::create_pki(opts.node_id, opts.listen)?;
        let tls = write_tls_files(&dir, (&pki.ca_cert_pem, &pki.ca_key_pem), (&pki.node_cert_pem, &pki.node_key_pem))?;
        (Some(tls), pki.node_names)
    };

    let signing = custos_evidence::export::SigningKey::generate_pkcs8().map_err(Error::Internal)?;
    write_private_bytes(&dir.join(crate::export::SIGNING_KEY_FILE), &signing)?;

    let token = new_token();
    let approver_token = new_token();
    let boot = Bootstrap {
        name: "admin".into(),
        token_blake3: blake3::hash(token.as_bytes()).to_hex().to_string(),
        approver: "approver".into(),
        approver_token_blake3: blake3::hash(approver_token.as_bytes()).to_hex().to_string(),
    };
    write_private(&dir.join(BOOTSTRAP_FILE), &serde_json::to_string(&boot).expect("json"))?;

    let mut cfg =
        NodeConfig::with_defaults(opts.node_id, opts.listen, vec![id.recipient.clone(), recovery.recipient.clone()]);
    cfg.segment_target_ms = opts.segment_target_ms;
    cfg.archive_identity_file = identity_rel.clone();
    cfg.insecure_plaintext = opts.insecure_plaintext;
    cfg.tls = tls.clone();
    cfg.campus = opts.campus.clone();
    cfg.cameras = opts.cameras.clone();
    cfg.metrics_listen = opts.metrics_listen;
    // The console needs HTTPS: a plaintext node serves none.
    cfg.web_listen = opts.web_listen.filter(|_| cfg.tls.is_some());
    let web_url = cfg.web_listen.map(crate::config::web_url);
    cfg.allow_test_sources = opts.allow_test_sources;
    cfg.hospital = opts.hospital.trim().to_string();
    write_config(&dir, cfg)?;

    Ok(InitReport {
        web_url,
        config_file: dir.join(CONFIG_FILE_NAME),
        archive_identity_file: dir.join(identity_rel),
        recovery_identity_file: dir.join(recovery_rel),
        recovery_recipient: recovery.recipient,
        ca_file: tls.map(|t| dir.join(t.ca_file)),
        tls_names,
        data_dir: dir,
        node_id: opts.node_id,
        listen: opts.listen,
        metrics_listen: opts.metrics_listen,
        archive_recipient: id.recipient,
        admin_user: boot.name,
        admin_token: token,
        approver_user: boot.approver,
        approver_token,
    })
}

/// Writes the CA and node certificate and keys under `dir/keys` (keys mode 0600).
pub(crate) fn write_tls_files(
    dir: &Path,
    (ca_pem, ca_key): (&str, &str),
    (node_pem, node_key): (&str, &str),
) -> Result<TlsConfig> {
    let k = dir.join("keys");
    write_private(&k.join("ca.key"), ca_key)?;
    write_private(&k.join("node.key"), node_key)?;
    crate::files::write_file_atomic(&k.join("ca.pem"), ca_pem.as_bytes())?;
    crate::files::write_file_atomic(&k.join("node.pem"), node_pem.as_bytes())?;
    Ok(TlsConfig {
        cert_file: PathBuf::from("keys/node.pem"),
        key_file: PathBuf::from("keys/node.key"),
        ca_file: PathBuf::from("keys/ca.pem"),
    })
}

pub(crate) fn write_config(dir: &Path, cfg: NodeConfig) -> Result<()> {
    let mut probe = cfg.clone();
    probe.data_dir = dir.to_path_buf();
    probe.validate().map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let text = format!(
        "# Custos node configuration; every field is described in docs/config.md.\n{}",
        toml::to_string_pretty(&cfg).map_err(|e| Error::Internal(e.to_string()))?
    );
    crate::files::write_file_atomic(&dir.join(CONFIG_FILE_NAME), text.as_bytes())
}

/// Options for `join`.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    pub data_dir: PathBuf,
    pub campus: String,
    pub listen: SocketAddr,
    /// Client API address of any node of the cluster.
    pub cluster: String,
    pub token: String,
    /// Where Prometheus metrics are served (`None`: nowhere).
    pub metrics_listen: Option<SocketAddr>,
    /// Where the web console is served (`None`: nowhere).
    pub web_listen: Option<SocketAddr>,
    /// Accept `file://` and `test://` sources (demos and trials only).
    pub allow_test_sources: bool,
    /// The hospital's name for export receipts (`hospital`).
    pub hospital: String,
}

/// What `join` created, as printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct JoinReport {
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
    pub node_id: u64,
    pub campus: String,
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub web_url: Option<String>,
    pub ca_file: PathBuf,
}

/// Joins the cluster at `opts.cluster`: verifies it against the CA fingerprint in the
/// token, trades the token for a node id and certificate, and writes the data directory.
pub async fn join(opts: &JoinOptions) -> Result<JoinReport> {
    use custos_proto::v1::join_client::JoinClient;
    let dir = &opts.data_dir;
    if dir.join(CONFIG_FILE_NAME).exists() {
        return Err(Error::AlreadyExists { what: "node data directory (custos.toml)", id: dir.display().to_string() });
    }
    custos_formats::fields::validate_campus(&opts.campus).map_err(Error::InvalidArgument)?;
    let (_, fingerprint) = custos_formats::fields::parse_join_token(&opts.token).map_err(Error::InvalidArgument)?;
    let (addr, fp) = (opts.cluster.clone(), fingerprint.to_string());
    let ca_pem = tokio::task::spawn_blocking(move || crate::tls::discover_ca(&addr, &fp))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
        .domain_name(crate::cluster::peers::host_of(&opts.cluster));
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", opts.cluster))
        .map_err(|e| Error::InvalidArgument(format!("--cluster {:?}: {e}", opts.cluster)))?
        .tls_config(tls)
        .map_err(|e| Error::Internal(format!("TLS: {e}")))?
        .connect()
        .await
        .map_err(|e| Error::Unavailable(format!("cannot connect to the cluster at {}: {e}", opts.cluster)))?;
    let reply = JoinClient::new(channel)
        .join(custos_proto::v1::JoinRequest {
            token: opts.token.clone(),
            campus: opts.campus.clone(),
            addr: opts.listen.to_string(),
        })
        .await
        .map_err(|s| Error::InvalidArgument(format!("the cluster refused to admit this node: {}", s.message())))?
        .into_inner();

    crate::create_private_dir(dir)?;
    crate::create_private_dir(&dir.join("keys"))?;
    let dir = fs::canonicalize(dir).map_err(|e| Error::io("resolve", dir, e))?;
    let k = dir.join("keys");
    write_private(&k.join("archive.age"), &reply.archive_identity)?;
    if !reply.signing_key_pkcs8.is_empty() {
        write_private_bytes(&dir.join(crate::export::SIGNING_KEY_FILE), &reply.signing_key_pkcs8)?;
    }
    let tls = write_tls_files(&dir, (&reply.ca_pem, &reply.ca_key_pem), (&reply.cert_pem, &reply.key_pem))?;
    let mut cfg = NodeConfig::with_defaults(reply.node_id, opts.listen, reply.archive_recipients);
    cfg.segment_target_ms = u64::from(reply.segment_target_ms);
    cfg.insecure_plaintext = false;
    cfg.tls = Some(tls);
    cfg.campus = opts.campus.clone();
    cfg.metrics_listen = opts.metrics_listen;
    cfg.web_listen = opts.web_listen;
    let web_url = cfg.web_listen.map(crate::config::web_url);
    cfg.allow_test_sources = opts.allow_test_sources;
    cfg.hospital = opts.hospital.trim().to_string();
    write_config(&dir, cfg)?;
    Ok(JoinReport {
        web_url,
        config_file: dir.join(CONFIG_FILE_NAME),
        ca_file: k.join("ca.pem"),
        data_dir: dir,
        node_id: reply.node_id,
        campus: opts.campus.clone(),
        listen: opts.listen,
        metrics_listen: opts.metrics_listen,
    })
}
