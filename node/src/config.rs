//! `NodeConfig`: the one TOML file a node reads at start, with defaults and validation.
//!
//! Every field is documented in `docs/config.md`. Unknown fields are refused so a typo
//! never silently falls back to a default. [`NodeConfig::validate`] names the field that
//! is wrong and says what would be right.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the config file `custos-node init` writes into the data directory.
pub const CONFIG_FILE_NAME: &str = "custos.toml";

/// Shortest segment a node may be configured to cut, in milliseconds.
pub const SEGMENT_TARGET_MS_MIN: u64 = 1_000;
/// Longest segment a node may be configured to cut, in milliseconds.
pub const SEGMENT_TARGET_MS_MAX: u64 = 60_000;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("config field `{field}`: {problem}")]
    Field { field: String, problem: String },
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field { field: field.into(), problem: problem.into() }
}

/// A camera listed in the config. On start the node registers every seed camera that
/// the catalog does not know yet; afterwards cameras are managed with `custos camera`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCamera {
    /// Stable camera id: letters, digits, `-`, `_` and `.`, at most 64 characters.
    pub id: String,
    /// `rtsp://…`, `file://…` or `test://[pattern]`.
    pub source: String,
    /// Human-readable name ("Pharmacy entrance").
    #[serde(default)]
    pub name: String,
    /// Sensitive zone (operating theatre, ward): viewing needs an explicit grant.
    #[serde(default)]
    pub sensitive: bool,
}

/// The node's configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id in the cluster (written by `init`, never changed afterwards).
    pub node_id: u64,
    /// Address the gRPC API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where blobs, the catalog and keys live. Relative paths are taken from the
    /// directory that holds the config file.
    #[serde(default)]
    pub data_dir: PathBuf,
    /// Target segment length in milliseconds; segments are cut at the first keyframe
    /// at or after it.
    #[serde(default = "default_segment_target_ms")]
    pub segment_target_ms: u64,
    /// age recipients every blob is encrypted to (the cluster archive key, plus any
    /// offline recovery key).
    pub archive_recipients: Vec<String>,
    /// File holding the age identity that decrypts blobs for playback.
    #[serde(default = "default_identity_file")]
    pub archive_identity_file: PathBuf,
    /// Serve the client API without TLS. For local development only: tokens and footage
    /// then cross the network in the clear.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// TLS for the client API. Required unless `insecure_plaintext` is set.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The site this node stands in. Replicas go to other campuses first, and a failed
    /// recorder's cameras move within its campus first.
    #[serde(default = "default_campus")]
    pub campus: String,
    /// Address other nodes and clients reach this node on, when it differs from `listen`
    /// (for instance when `listen` is 0.0.0.0).
    #[serde(default)]
    pub advertise: Option<String>,
    /// Copies of every segment the cluster keeps, the recorder's own included.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: usize,
    /// Free space (MiB) below which this node takes no new replicas.
    #[serde(default = "default_free_space_floor_mib")]
    pub free_space_floor_mib: u64,
    /// Most space (MiB) this node's blobs may take, whatever the filesystem holds; 0 uses
    /// the whole filesystem. For nodes that share a disk, and for tests.
    #[serde(default)]
    pub capacity_mib: u64,
    /// A node down this long (seconds) no longer counts as holding its copies; repair
    /// makes new ones elsewhere. A retired node's copies are replaced at once.
    #[serde(default = "default_repair_after_down_s")]
    pub repair_after_down_s: u64,
    /// Seconds between expiry passes on the leader.
    #[serde(default = "default_expiry_every_s")]
    pub expiry_every_s: u64,
    /// Seconds between daily seals (the leader's signed statement of what was kept;
    /// default one day).
    #[serde(default = "default_seal_every_s")]
    pub seal_every_s: u64,
    /// Seconds between picture checks of each camera this node records (one keyframe of
    /// the newest segment decoded, one camera at a time); 0 turns them off.
    #[serde(default = "default_picture_check_every_s")]
    pub picture_check_every_s: u64,
    /// Raft entries between catalog snapshots (0: the built-in 20,000). Snapshots seed
    /// nodes that join late and let the log be trimmed.
    #[serde(default)]
    pub raft_snapshot_every: u64,
    /// Where the Prometheus metrics endpoint (`/metrics`, plain HTTP) listens; leave out
    /// to serve none.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Where the web console (HTTPS, with this node's certificate) listens; leave out to
    /// serve none. `init` writes the API host on port 8443.
    #[serde(default)]
    pub web_listen: Option<SocketAddr>,
    /// Seconds without activity after which a console session ends (default 15 minutes).
    #[serde(default = "default_web_idle_timeout_s")]
    pub web_idle_timeout_s: u64,
    /// Accept `file://` and `test://` sources (recorded files, test patterns). For demos
    /// and trials only: such a source puts footage no camera saw into the archive.
    #[serde(default)]
    pub allow_test_sources: bool,
    /// Which receiver takes `rtsp://` cameras: `native` (default) or `gstreamer`.
    #[serde(default)]
    pub rtsp_receiver: crate::ingest::RtspReceiver,
    /// Give every camera a hot standby, not only those marked with `--standby`. The
    /// leader applies it: set the same on every node. Doubles each camera's RTSP sessions
    /// and network (docs/operations.md, "Hot standby").
    #[serde(default)]
    pub standby_all_cameras: bool,
    /// The hospital's name as export packages print it on their custody receipt
    /// (`receipt.pdf`). Set the same on every node.
    #[serde(default)]
    pub hospital: String,
    /// When conditions become alarms.
    #[serde(default)]
    pub alarms: AlarmsConfig,
    /// Background re-verification of this node's blobs.
    #[serde(default)]
    pub scrub: ScrubConfig,
    /// Shifts' time zone and the patrols each needs.
    #[serde(default)]
    pub duty: crate::shifts::DutyConfig,
    /// Continuous backup to S3-compatible storage (optional).
    #[serde(default)]
    pub backup: Option<BackupConfig>,
    /// Cameras to register at start, once per cluster (see `seed_cameras` in lib.rs).
    #[serde(default, rename = "camera")]
    pub cameras: Vec<SeedCamera>,
}

/// `[scrub]` in the node config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Most blob bytes read per second (bounds the disk time scrubbing takes from
    /// recording and playback).
    #[serde(default = "default_bytes_per_s")]
    pub bytes_per_s: u64,
    /// Pause between the end of one pass over every blob and the start of the next.
    #[serde(default = "default_pass_pause_s")]
    pub pass_pause_s: u64,
}

fn yes() -> bool {
    true
}
fn default_bytes_per_s() -> u64 {
    32 << 20
}
fn default_pass_pause_s() -> u64 {
    3_600
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig { enabled: true, bytes_per_s: default_bytes_per_s(), pass_pause_s: default_pass_pause_s() }
    }
}

/// Replicas every segment should have (counting the recorder's own copy).
pub const REPLICATION_FACTOR_DEFAULT: usize = 2;

/// When conditions become alarms (`[alarms]` in the node config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    /// A camera is down when no segment of it ended within this many target segment
    /// lengths.
    #[serde(default = "default_camera_down_segments")]
    pub camera_down_segments: u32,
    /// ... and never sooner than this many seconds.
    #[serde(default = "default_camera_down_min_s")]
    pub camera_down_min_s: u64,
    /// Backup is lagging when the oldest segment waiting for the bucket ended this long
    /// ago (seconds).
    #[serde(default = "default_backup_lag_s")]
    pub backup_lag_s: u64,
    /// Segments under the replication factor for this long (seconds) raise an alarm;
    /// shorter spells are repair's everyday work.
    #[serde(default = "default_under_replicated_s")]
    pub under_replicated_s: u64,
    /// A node's scrubber finding damage keeps a `scrub-failure` alarm open this long
    /// (seconds), repaired or not, so someone sees it; unrepaired damage keeps it open
    /// until it is repaired.
    #[serde(default = "default_scrub_finding_hold_s")]
    pub scrub_finding_hold_s: u64,
    /// A node whose wall clock is further than this (ms) from the cluster's median clock
    /// raises `clock-skew`: its timestamps on footage, and any decision taken at its
    /// time, cannot be trusted.
    #[serde(default = "default_clock_skew_ms")]
    pub clock_skew_ms: u64,
    /// A fault open longer than this (hours) is overdue in the compliance report.
    #[serde(default = "default_fault_open_max_h")]
    pub fault_open_max_h: u64,
    /// A shift handover not accepted within this many minutes raises
    /// `handover-unaccepted`.
    #[serde(default = "default_handover_accept_min")]
    pub handover_accept_min: u64,
    /// URLs the leader posts alarm changes to, in Alertmanager's webhook JSON.
    #[serde(default)]
    pub webhooks: Vec<String>,
}

fn default_fault_open_max_h() -> u64 {
    24
}
fn default_handover_accept_min() -> u64 {
    30
}

fn default_camera_down_segments() -> u32 {
    4
}
fn default_camera_down_min_s() -> u64 {
    10
}
fn default_backup_lag_s() -> u64 {
    900
}
fn default_under_replicated_s() -> u64 {
    300
}
fn default_scrub_finding_hold_s() -> u64 {
    600
}
fn default_clock_skew_ms() -> u64 {
    2_000
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig {
            camera_down_segments: default_camera_down_segments(),
            camera_down_min_s: default_camera_down_min_s(),
            backup_lag_s: default_backup_lag_s(),
            under_replicated_s: default_under_replicated_s(),
            scrub_finding_hold_s: default_scrub_finding_hold_s(),
            clock_skew_ms: default_clock_skew_ms(),
            fault_open_max_h: default_fault_open_max_h(),
            handover_accept_min: default_handover_accept_min(),
            webhooks: Vec::new(),
        }
    }
}

impl AlarmsConfig {
    /// How long a camera may go without a committed segment.
    pub fn camera_down_after_ms(&self, segment_target_ms: u64) -> i64 {
        let by_segments = segment_target_ms.saturating_mul(u64::from(self.camera_down_segments));
        by_segments.max(self.camera_down_min_s * 1000) as i64
    }
}

/// Where backups go: an S3-compatible bucket. Credentials come from the standard AWS
/// environment variables, never from this file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// `https://s3.example.org` (leave out for AWS itself).
    #[serde(default)]
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub prefix: String,
    /// Allow plain HTTP to the endpoint (loopback tests only).
    #[serde(default)]
    pub allow_http: bool,
    /// Seconds between encrypted catalog snapshots (taken only when the catalog changed).
    #[serde(default = "default_snapshot_every_s")]
    pub snapshot_every_s: u64,
    /// An AWS-style credentials file to read instead of the environment.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// The profile to read from `credentials_file`.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Largest pack object: a camera's queued segments are uploaded together up to this.
    #[serde(default = "default_pack_target_bytes")]
    pub pack_target_bytes: u64,
    /// Longest a segment waits for more of its camera's footage to fill a pack.
    #[serde(default = "default_pack_max_wait_s")]
    pub pack_max_wait_s: u64,
    /// Write packs, snapshots and seals under S3 Object Lock (`true`, `false` or `"auto"`:
    /// use it when the bucket has it enabled). See `backup::lock`.
    #[serde(default)]
    pub object_lock: ObjectLock,
}

/// `backup.object_lock`: whether objects are written with a COMPLIANCE retention date and
/// held footage with a legal hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ObjectLockToml", into = "ObjectLockToml")]
pub enum ObjectLock {
    /// Never: plain puts, even on a bucket with Object Lock.
    Off,
    /// Always: the worker refuses to upload to a bucket without Object Lock.
    On,
    /// Whatever the bucket has (`GetObjectLockConfiguration`), checked when the node
    /// starts leading.
    #[default]
    Auto,
}

/// How `object_lock` is spelt in TOML: a boolean or `"auto"`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ObjectLockToml {
    Bool(bool),
    Word(String),
}

impl TryFrom<ObjectLockToml> for ObjectLock {
    type Error = String;
    fn try_from(v: ObjectLockToml) -> Result<Self, String> {
        match v {
            ObjectLockToml::Bool(true) => Ok(ObjectLock::On),
            ObjectLockToml::Bool(false) => Ok(ObjectLock::Off),
            ObjectLockToml::Word(w) if w == "auto" => Ok(ObjectLock::Auto),
            ObjectLockToml::Word(w) => Err(format!("object_lock is true, false or \"auto\", not {w:?}")),
        }
    }
}

impl From<ObjectLock> for ObjectLockToml {
    fn from(v: ObjectLock) -> Self {
        match v {
            ObjectLock::On => ObjectLockToml::Bool(true),
            ObjectLock::Off => ObjectLockToml::Bool(false),
            ObjectLock::Auto => ObjectLockToml::Word("auto".into()),
        }
    }
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            endpoint: None,
            bucket: String::new(),
            region: default_region(),
            prefix: String::new(),
            allow_http: false,
            snapshot_every_s: default_snapshot_every_s(),
            credentials_file: None,
            profile: default_profile(),
            pack_target_bytes: default_pack_target_bytes(),
            pack_max_wait_s: default_pack_max_wait_s(),
            object_lock: ObjectLock::Auto,
        }
    }
}

fn default_pack_target_bytes() -> u64 {
    8 << 20
}

fn default_pack_max_wait_s() -> u64 {
    60
}

fn default_snapshot_every_s() -> u64 {
    600
}

fn default_profile() -> String {
    "default".into()
}

fn default_region() -> String {
    "us-east-1".into()
}

/// Certificate files for the client API (paths relative to the data directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// This node's certificate (PEM), signed by the cluster CA.
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// The cluster CA certificate (PEM), which clients verify the node against.
    pub ca_file: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7400))
}
fn default_campus() -> String {
    "main".into()
}
fn default_replication_factor() -> usize {
    REPLICATION_FACTOR_DEFAULT
}
fn default_free_space_floor_mib() -> u64 {
    1024
}
fn default_repair_after_down_s() -> u64 {
    600
}
fn default_expiry_every_s() -> u64 {
    60
}
fn default_picture_check_every_s() -> u64 {
    60
}
fn default_seal_every_s() -> u64 {
    86_400
}
fn default_segment_target_ms() -> u64 {
    4_000
}
fn default_identity_file() -> PathBuf {
    PathBuf::from("keys/archive.age")
}

/// The console's port when nothing else is said.
pub const DEFAULT_WEB_PORT: u16 = 8443;

fn default_web_idle_timeout_s() -> u64 {
    900
}

/// Where the console is served when nothing else is said: the API's host, port 8443.
pub fn default_web_listen(listen: SocketAddr) -> SocketAddr {
    SocketAddr::new(listen.ip(), DEFAULT_WEB_PORT)
}

/// The console's URL for a node serving it on `web`: its host name when it listens on
/// every address.
pub fn web_url(web: SocketAddr) -> String {
    let host = if web.ip().is_unspecified() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    } else if web.is_ipv6() {
        format!("[{}]", web.ip())
    } else {
        web.ip().to_string()
    };
    format!("https://{host}:{}/", web.port())
}

/// The conventional port of a Prometheus exporter that has no registered one of its own.
pub const DEFAULT_METRICS_PORT: u16 = 9464;

/// Where metrics are served when nothing else is said: loopback (of the API address's
/// family), port 9464. Metrics are plain HTTP without authentication and name every
/// camera, so they reach the network only where an operator says so.
pub fn default_metrics_listen(listen: SocketAddr) -> SocketAddr {
    let ip: std::net::IpAddr =
        if listen.is_ipv6() { std::net::Ipv6Addr::LOCALHOST.into() } else { std::net::Ipv4Addr::LOCALHOST.into() };
    SocketAddr::new(ip, DEFAULT_METRICS_PORT)
}

impl NodeConfig {
    /// A config with every optional field at its default, serving plaintext until `tls`
    /// is set (what `init` and `join` start from).
    pub fn with_defaults(node_id: u64, listen: SocketAddr, archive_recipients: Vec<String>) -> NodeConfig {
        NodeConfig {
            node_id,
            listen,
            data_dir: PathBuf::new(),
            segment_target_ms: default_segment_target_ms(),
            archive_recipients,
            archive_identity_file: default_identity_file(),
            insecure_plaintext: true,
            tls: None,
            campus: default_campus(),
            advertise: None,
            replication_factor: default_replication_factor(),
            free_space_floor_mib: default_free_space_floor_mib(),
            capacity_mib: 0,
            repair_after_down_s: default_repair_after_down_s(),
            raft_snapshot_every: 0,
            expiry_every_s: default_expiry_every_s(),
            seal_every_s: default_seal_every_s(),
            picture_check_every_s: default_picture_check_every_s(),
            metrics_listen: Some(default_metrics_listen(listen)),
            web_listen: Some(default_web_listen(listen)),
            web_idle_timeout_s: default_web_idle_timeout_s(),
            alarms: AlarmsConfig::default(),
            duty: crate::shifts::DutyConfig::default(),
            scrub: ScrubConfig::default(),
            backup: None,
            allow_test_sources: false,
            rtsp_receiver: Default::default(),
            standby_all_cameras: false,
            hospital: String::new(),
            cameras: vec![],
        }
    }

    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut cfg: NodeConfig = toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(source) })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() { Path::new(".") } else { base };
        if cfg.data_dir.as_os_str().is_empty() {
            cfg.data_dir = base.to_path_buf();
        } else if cfg.data_dir.is_relative() {
            cfg.data_dir = base.join(&cfg.data_dir);
        }
        cfg.validate()
    }

    /// Checks every field and returns the config, or the first field that is wrong.
    pub fn validate(self) -> Result<NodeConfig, ConfigError> {
        if self.node_id == 0 {
            return Err(field("node_id", "must be at least 1 (0 is reserved)"));
        }
        if !(SEGMENT_TARGET_MS_MIN..=SEGMENT_TARGET_MS_MAX).contains(&self.segment_target_ms) {
            return Err(field(
                "segment_target_ms",
                format!(
                    "{} is outside {SEGMENT_TARGET_MS_MIN}..={SEGMENT_TARGET_MS_MAX} milliseconds",
                    self.segment_target_ms
                ),
            ));
        }
        if self.archive_recipients.is_empty() {
            return Err(field(
                "archive_recipients",
                "at least one age recipient is needed; `custos-node init` writes the cluster's",
            ));
        }
        for (i, r) in self.archive_recipients.iter().enumerate() {
            if r.parse::<age::x25519::Recipient>().is_err() {
                return Err(field(
                    format!("archive_recipients[{i}]"),
                    format!("{r:?} is not an age X25519 recipient (age1…)"),
                ));
            }
        }
        match (&self.tls, self.insecure_plaintext) {
            (None, false) => {
                return Err(field(
                    "tls",
                    "the client API needs a [tls] section (custos-node init writes one); set insecure_plaintext = true only for local development",
                ))
            }
            (Some(_), true) => return Err(field("insecure_plaintext", "cannot be true while a [tls] section is present; choose one")),
            _ => {}
        }
        custos_formats::fields::validate_campus(&self.campus).map_err(|p| field("campus", p))?;
        if !(1..=5).contains(&self.replication_factor) {
            return Err(field("replication_factor", format!("{} is outside 1..=5", self.replication_factor)));
        }
        if !(1..=3600).contains(&self.expiry_every_s) {
            return Err(field("expiry_every_s", "must be between 1 and 3600 seconds"));
        }
        for u in &self.alarms.webhooks {
            crate::webhooks::validate_url(u).map_err(|why| field("alarms.webhooks", why))?;
        }
        if let Err(why) = crate::shifts::parse_offset(&self.duty.time_zone) {
            return Err(field("duty.time_zone", why));
        }
        if !(1..=100).contains(&self.duty.patrols_per_shift) {
            return Err(field("duty.patrols_per_shift", "must be between 1 and 100"));
        }
        if !(1..=7 * 86_400).contains(&self.seal_every_s) {
            return Err(field("seal_every_s", "must be between 1 second and 7 days"));
        }
        if self.repair_after_down_s < 5 {
            return Err(field("repair_after_down_s", "must be at least 5 seconds"));
        }
        if let Some(a) = &self.advertise {
            if a.parse::<SocketAddr>().is_err() {
                return Err(field("advertise", format!("{a:?} is not an IP:port address")));
            }
        }
        if let Some(b) = &self.backup {
            if b.bucket.trim().is_empty() {
                return Err(field("backup.bucket", "is required"));
            }
            if let Some(e) = &b.endpoint {
                if e.starts_with("http://") && !b.allow_http {
                    return Err(field(
                        "backup.endpoint",
                        "is plain HTTP; use https://, or set allow_http = true for a loopback test",
                    ));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, cam) in self.cameras.iter().enumerate() {
            crate::ingest::validate_camera_id(&cam.id).map_err(|p| field(format!("camera[{i}].id"), p))?;
            let source =
                crate::ingest::Source::parse(&cam.source).map_err(|p| field(format!("camera[{i}].source"), p))?;
            crate::ingest::check_allowed(&source, self.allow_test_sources)
                .map_err(|p| field(format!("camera[{i}].source"), p))?;
            if !seen.insert(cam.id.as_str()) {
                return Err(field(format!("camera[{i}].id"), format!("{:?} is listed twice", cam.id)));
            }
        }
        Ok(self)
    }

    /// The address this node is reached on.
    pub fn advertise_addr(&self) -> String {
        self.advertise.clone().unwrap_or_else(|| self.listen.to_string())
    }

    /// A path from the config, resolved against the data directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.data_dir.join(p)
        }
    }

    /// Absolute path of the archive identity file.
    pub fn identity_path(&self) -> PathBuf {
        if self.archive_identity_file.is_absolute() {
            self.archive_identity_file.clone()
        } else {
            self.data_dir.join(&self.archive_identity_file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NodeConfig {
        let id = age::x25519::Identity::generate();
        let mut c = NodeConfig::with_defaults(1, default_listen(), vec![id.to_public().to_string()]);
        c.data_dir = PathBuf::from("/tmp/x");
        c
    }

    #[test]
    fn errors_name_the_field() {
        let mut c = base();
        c.segment_target_ms = 10;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("segment_target_ms"), "{e}");

        let mut c = base();
        c.archive_recipients = vec!["nope".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("archive_recipients[0]"), "{e}");

        let mut c = base();
        c.cameras =
            vec![SeedCamera { id: "a b".into(), source: "test://".into(), name: String::new(), sensitive: false }];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("camera[0].id"), "{e}");

        let mut c = base();
        c.cameras =
            vec![SeedCamera { id: "a".into(), source: "ftp://x".into(), name: String::new(), sensitive: false }];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("camera[0].source"), "{e}");

        let mut c = base();
        c.cameras =
            vec![SeedCamera { id: "a".into(), source: "test://ball".into(), name: String::new(), sensitive: false }];
        let e = c.clone().validate().unwrap_err().to_string();
        assert!(e.contains("camera[0].source") && e.contains("allow_test_sources = true"), "{e}");
        c.allow_test_sources = true;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn object_lock_is_a_boolean_or_auto() {
        let parse = |v: &str| toml::from_str::<BackupConfig>(&format!("bucket = \"b\"\n{v}"));
        assert_eq!(parse("").unwrap().object_lock, ObjectLock::Auto);
        assert_eq!(parse("object_lock = true").unwrap().object_lock, ObjectLock::On);
        assert_eq!(parse("object_lock = false").unwrap().object_lock, ObjectLock::Off);
        assert_eq!(parse("object_lock = \"auto\"").unwrap().object_lock, ObjectLock::Auto);
        let e = parse("object_lock = \"always\"").unwrap_err().to_string();
        assert!(e.contains("true, false or \"auto\""), "{e}");
    }

    #[test]
    fn metrics_default_to_loopback() {
        assert_eq!(default_metrics_listen("0.0.0.0:7400".parse().unwrap()).to_string(), "127.0.0.1:9464");
        assert_eq!(default_metrics_listen("10.1.0.10:7400".parse().unwrap()).to_string(), "127.0.0.1:9464");
        assert_eq!(default_metrics_listen("[::]:7400".parse().unwrap()).to_string(), "[::1]:9464");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let r = age::x25519::Identity::generate().to_public().to_string();
        std::fs::write(
            &p,
            format!(
                "node_id = 1\ninsecure_plaintext = true\narchive_recipients = [\"{r}\"]\nsegmnt_target_ms = 4000\n"
            ),
        )
        .unwrap();
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("segmnt_target_ms"), "{e}");
        std::fs::write(&p, format!("node_id = 1\narchive_recipients = [\"{r}\"]\n")).unwrap();
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("`tls`"), "plaintext is never the default: {e}");
        std::fs::write(&p, format!("node_id = 1\ninsecure_plaintext = true\narchive_recipients = [\"{r}\"]\n"))
            .unwrap();
        let c = NodeConfig::load(&p).unwrap();
        assert_eq!(c.data_dir, dir.path());
        assert_eq!(c.segment_target_ms, 4000);
    }
}
