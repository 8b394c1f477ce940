//! `custos`: the command line for security staff, IT and investigators.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "custos", version, about = "Custos client: cameras, search and verified footage retrieval")]
pub struct Cli {
    /// Node address.
    #[arg(long, global = true, env = "CUSTOS_ADDR", default_value = custos_client::DEFAULT_ADDR)]
    pub addr: String,
    /// Bearer token (prefer the CUSTOS_TOKEN environment variable: flags show up in `ps`).
    #[arg(long, global = true, env = "CUSTOS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Cluster CA certificate (PEM) the node is verified against; a node's is DATA/keys/ca.pem.
    #[arg(long, global = true, env = "CUSTOS_CA", value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Talk to a node without TLS (only nodes started with insecure_plaintext; development only).
    #[arg(long, global = true, env = "CUSTOS_INSECURE", conflicts_with = "ca")]
    pub insecure: bool,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Register, list and remove cameras.
    #[command(subcommand)]
    Camera(cmd::camera::CameraCmd),
    /// List the segments of a camera in a time range.
    Search(cmd::footage::SearchArgs),
    /// Download verified footage of a camera's time range as one MPEG-TS file.
    Fetch(cmd::footage::FetchArgs),
    /// Node status: Raft role, segments, cameras and their recording state.
    Status,
    /// The cluster's nodes: campus, Raft role, health, disk and cameras.
    Nodes,
    /// Cluster membership: join tokens, retiring nodes (administrators).
    #[command(subcommand)]
    Node(cmd::node::NodeCmd),
    /// Users, roles and grants (administrators).
    #[command(subcommand)]
    User(cmd::user::UserCmd),
    /// Tokens: issue, list, revoke (administrators).
    #[command(subcommand)]
    Token(cmd::user::TokenCmd),
    /// The change queue: what administrators asked for that waits for an approver
    /// (list, show; approvers: approve, reject).
    #[command(subcommand)]
    Change(cmd::change::ChangeCmd),
    /// Legal and incident holds: keep footage past every expiry until two people release it.
    #[command(subcommand)]
    Hold(cmd::hold::HoldCmd),
    /// Retention policies: at least 30 days, never lower.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCmd),
    /// Evidence exports: request, approve, run, download, verify offline.
    #[command(subcommand)]
    Export(cmd::export::ExportCmd),
    /// Backups to S3-compatible storage.
    #[command(subcommand)]
    Backup(cmd::status::BackupCmd),
    /// The hash-chained audit log (auditors).
    #[command(subcommand)]
    Audit(cmd::audit::AuditCmd),
    /// The daily seals: the cluster's signed statement of what it kept (list, show; verify offline).
    #[command(subcommand)]
    Seal(cmd::seal::SealCmd),
    /// Alarms raised and cleared by the cluster: list them, acknowledge them with a note.
    Alarms(cmd::ops::AlarmsArgs),
    /// Check every camera and node now and record the patrol (`custos patrol list`: past ones).
    Patrol(cmd::ops::PatrolArgs),
    /// Leadership's sign-off of the duty log (approvers).
    #[command(subcommand)]
    Duty(cmd::ops::DutyCmd),
    /// The fault register: report what the system cannot see, list, resolve.
    #[command(subcommand)]
    Fault(cmd::ops::FaultCmd),
    /// Shift handovers in writing, accepted by the receiver.
    #[command(subcommand)]
    Shift(cmd::ops::ShiftCmd),
    /// Reports: whether retention and access rules were kept.
    #[command(subcommand)]
    Report(cmd::ops::ReportCmd),
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = cmd::dispatch(cli).await {
        // Server messages can quote what a user typed; nothing in them may drive the terminal.
        eprintln!("error: {}", custos_client::text::terminal_lines(&format!("{e:#}")));
        std::process::exit(1);
    }
}
