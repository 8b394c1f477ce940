//! `custos-node`: flags, tracing, config, then `custos_node::run`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use custos_node::config::{NodeConfig, SeedCamera, CONFIG_FILE_NAME};
use custos_node::init::{init, InitOptions};

#[derive(Parser)]
#[command(name = "custos-node", version, about = "Custos recorder and storage node")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a data directory: archive key, config file and the first admin token.
    Init {
        /// Data directory to create.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Address the client API listens on.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
        /// This node's id.
        #[arg(long, default_value_t = 1)]
        node_id: u64,
        /// Target segment length in milliseconds.
        #[arg(long, default_value_t = 4000)]
        segment_target_ms: u64,
        /// Seed camera as ID=SOURCE (repeatable), e.g. lobby=test://ball.
        #[arg(long = "camera", value_name = "ID=SOURCE")]
        cameras: Vec<String>,
        /// Print everything init created as one JSON object.
        #[arg(long)]
        json: bool,
        /// Serve the client API without TLS. Local development only (a plaintext node
        /// cannot form a cluster).
        #[arg(long)]
        insecure_plaintext: bool,
        /// The site this node stands in (replicas go to other campuses first).
        #[arg(long, default_value = "main")]
        campus: String,
        /// Where Prometheus metrics are served (http://ADDR/metrics), or `off`.
        /// Default: 127.0.0.1:9464 (loopback; metrics are unauthenticated plain HTTP).
        #[arg(long, value_name = "ADDR|off")]
        metrics_listen: Option<String>,
        /// Where the web console is served (https://ADDR/, this node's certificate), or
        /// `off`. Default: the --listen host on port 8443.
        #[arg(long, value_name = "ADDR|off")]
        web_listen: Option<String>,
        /// Accept file:// and test:// camera sources (recorded files, test patterns):
        /// writes allow_test_sources = true. For demos and trials only.
        #[arg(long)]
        allow_test_sources: bool,
        /// The hospital's name, printed on every export's custody receipt (writes
        /// `hospital`; set the same on every node).
        #[arg(long, default_value = "")]
        hospital: String,
    },
    /// Create the data directory of a node joining an existing cluster.
    ///
    /// An administrator prints a single-use token with `custos node join-token`. The
    /// token names the cluster's CA, so this command verifies the cluster before it
    /// sends the token. Start the node afterwards with `custos-node run --data DIR`.
    Join {
        /// Data directory to create.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The site this node stands in.
        #[arg(long)]
        campus: String,
        /// Address this node will listen on; other nodes reach it there.
        #[arg(long)]
        listen: SocketAddr,
        /// Client API address (host:port) of any node of the cluster.
        #[arg(long, value_name = "ADDR")]
        cluster: String,
        /// The join token (`custos node join-token`).
        #[arg(long, env = "CUSTOS_JOIN_TOKEN", hide_env_values = true)]
        token: String,
        /// Print what join created as one JSON object.
        #[arg(long)]
        json: bool,
        /// Where Prometheus metrics are served (http://ADDR/metrics), or `off`.
        /// Default: 127.0.0.1:9464 (loopback; metrics are unauthenticated plain HTTP).
        #[arg(long, value_name = "ADDR|off")]
        metrics_listen: Option<String>,
        /// Where the web console is served (https://ADDR/, this node's certificate), or
        /// `off`. Default: the --listen host on port 8443.
        #[arg(long, value_name = "ADDR|off")]
        web_listen: Option<String>,
        /// Accept file:// and test:// camera sources (recorded files, test patterns):
        /// writes allow_test_sources = true. For demos and trials only.
        #[arg(long)]
        allow_test_sources: bool,
        /// The hospital's name, printed on every export's custody receipt (writes
        /// `hospital`; set the same on every node).
        #[arg(long, default_value = "")]
        hospital: String,
    },
    /// Rebuild a node from the backup bucket and the offline recovery identity.
    ///
    /// Opens the newest snapshot, verifies the audit chain, downloads and verifies every
    /// segment, and writes a data directory whose node founds a new cluster on the
    /// restored catalog (the lost nodes are retired). Start it with `custos-node run`,
    /// then add nodes with `custos node join-token` and `custos-node join`. Credentials
    /// come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --credentials-file.
    Restore(RestoreArgs),
    /// Run the node until Ctrl-C or SIGTERM.
    Run {
        /// Data directory made by `init` (reads DIR/custos.toml).
        #[arg(long, value_name = "DIR", conflicts_with = "config")]
        data: Option<PathBuf>,
        /// Config file to read instead.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Flags of `custos-node restore`.
#[derive(clap::Args)]
struct RestoreArgs {
    /// Where the backup is: s3://BUCKET or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "S3_URL")]
    from: String,
    /// The S3 endpoint (leave out for AWS itself), e.g. https://s3.hospital.example.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Allow plain HTTP to the endpoint (loopback tests only).
    #[arg(long)]
    allow_http: bool,
    /// An AWS-style credentials file to read instead of the environment.
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<PathBuf>,
    #[arg(long, default_value = "default")]
    profile: String,
    /// The offline recovery identity that `custos-node init` wrote.
    #[arg(long, value_name = "FILE")]
    recovery_identity: PathBuf,
    /// New (or empty) data directory for the restored node.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Address the restored node listens on.
    #[arg(long, default_value = "127.0.0.1:7400")]
    listen: SocketAddr,
    /// The site the restored node stands in.
    #[arg(long, default_value = "main")]
    campus: String,
    /// Where the restored node serves Prometheus metrics (http://ADDR/metrics), or
    /// `off`. Default: 127.0.0.1:9464 (loopback; metrics are unauthenticated plain HTTP).
    #[arg(long, value_name = "ADDR|off")]
    metrics_listen: Option<String>,
    /// Where the restored node serves the web console, or `off`. Default: the --listen
    /// host on port 8443.
    #[arg(long, value_name = "ADDR|off")]
    web_listen: Option<String>,
    /// Accept file:// and test:// camera sources (recorded files, test patterns):
    /// writes allow_test_sources = true. For demos and trials only.
    #[arg(long)]
    allow_test_sources: bool,
    /// The hospital's name, printed on every export's custody receipt (writes
    /// `hospital`; set the same on every node).
    #[arg(long, default_value = "")]
    hospital: String,
    /// Restore this snapshot key instead of the newest.
    #[arg(long, value_name = "KEY")]
    snapshot: Option<String>,
    /// Restore the snapshot even though the bucket holds a seal newer than it (what the
    /// seal recorded after the snapshot is lost; the restore's audit entry says so).
    #[arg(long)]
    accept_rollback: bool,
    /// The hospital's published signing key (64 hex digits, `custos export pubkey`): the
    /// snapshot must be signed by it. Without it the signature is checked only against
    /// the key the snapshot itself carries, which does not show who made it.
    #[arg(long, value_name = "HEX")]
    pubkey: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `--metrics-listen`: an address, `off`, or by default 127.0.0.1:9464.
fn metrics_addr(arg: Option<String>, listen: SocketAddr) -> anyhow::Result<Option<SocketAddr>> {
    let addr = match arg.as_deref() {
        None => custos_node::config::default_metrics_listen(listen),
        Some("off") => return Ok(None),
        Some(a) => a.parse().with_context(|| {
            format!("--metrics-listen {a:?}: expected HOST:PORT (for example 127.0.0.1:9464) or off")
        })?,
    };
    if addr == listen {
        bail!("--metrics-listen {addr} is the API's own address; choose another port");
    }
    Ok(Some(addr))
}

/// `--web-listen`: an address, `off`, or by default the API host on port 8443.
fn web_addr(arg: Option<String>, listen: SocketAddr) -> anyhow::Result<Option<SocketAddr>> {
    let addr = match arg.as_deref() {
        None => custos_node::config::default_web_listen(listen),
        Some("off") => return Ok(None),
        Some(a) => a
            .parse()
            .with_context(|| format!("--web-listen {a:?}: expected HOST:PORT (for example 0.0.0.0:8443) or off"))?,
    };
    if addr == listen {
        bail!("--web-listen {addr} is the API's own address; choose another port");
    }
    Ok(Some(addr))
}

fn main() -> anyhow::Result<()> {
    // Keys, config, catalog and blobs: everything this process creates is owner-only.
    custos_node::owner_only_umask();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Join {
            data,
            campus,
            listen,
            cluster,
            token,
            json,
            metrics_listen,
            web_listen,
            allow_test_sources,
            hospital,
        } => {
            let metrics_listen = metrics_addr(metrics_listen, listen)?;
            let web_listen = web_addr(web_listen, listen)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let r = rt.block_on(custos_node::init::join(&custos_node::init::JoinOptions {
                data_dir: data,
                campus,
                listen,
                cluster,
                token,
                metrics_listen,
                web_listen,
                allow_test_sources,
                hospital,
            }))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("Joined the cluster as node {} (campus {}) in {}", r.node_id, r.campus, r.data_dir.display());
                println!("  config:     {}", r.config_file.display());
                println!("  cluster CA: {}", r.ca_file.display());
                println!("Start it with: custos-node run --data {}", r.data_dir.display());
            }
            Ok(())
        }
        Cmd::Restore(a) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let json = a.json;
            let opts = custos_node::backup::restore::RestoreOptions {
                from: a.from,
                endpoint: a.endpoint,
                region: a.region,
                allow_http: a.allow_http,
                credentials_file: a.credentials_file,
                profile: a.profile,
                recovery_identity: a.recovery_identity,
                data_dir: a.data,
                listen: a.listen,
                metrics_listen: metrics_addr(a.metrics_listen, a.listen)?,
                web_listen: web_addr(a.web_listen, a.listen)?,
                campus: a.campus,
                snapshot: a.snapshot,
                accept_rollback: a.accept_rollback,
                pubkey: a.pubkey,
                progress: true,
                allow_test_sources: a.allow_test_sources,
                hospital: a.hospital,
            };
            let r = rt.block_on(custos_node::backup::restore::restore(&opts))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("Restored node {} (campus {}) in {}", r.node_id, r.campus, r.data_dir.display());
                println!("  snapshot:   {} (log index {})", r.snapshot_key, r.snapshot_log_index);
                let fingerprint = custos_evidence::export::key_fingerprint(&r.snapshot_signing_key);
                match r.signer_checked_against {
                    custos_node::backup::restore::SignerCheck::PublishedKey => {
                        println!("  signed by:  the published key {fingerprint} (--pubkey)")
                    }
                    custos_node::backup::restore::SignerCheck::SnapshotKeyOnly => println!(
                        "  signed by:  {fingerprint}, checked ONLY against the key inside the snapshot (pass --pubkey)"
                    ),
                }
                if !r.newer_snapshots.is_empty() {
                    println!("  NEWER snapshots exist: {}", r.newer_snapshots.join(", "));
                }
                println!("  audit log:  {} entries, chain verified", r.audit_entries_verified);
                println!(
                    "  segments:   {} of {} restored and verified ({} bytes)",
                    r.segments_restored, r.segments_in_catalog, r.bytes_restored
                );
                if !r.segments_missing.is_empty() {
                    println!(
                        "  MISSING from the bucket ({}): {}",
                        r.segments_missing.len(),
                        r.segments_missing.join(", ")
                    );
                }
                if !r.segments_corrupt.is_empty() {
                    println!("  CORRUPT in the bucket ({}):", r.segments_corrupt.len());
                    for c in &r.segments_corrupt {
                        println!("    {c}");
                    }
                }
                println!("Start it with: custos-node run --data {}", r.data_dir.display());
            }
            Ok(())
        }
        Cmd::Init {
            data,
            listen,
            node_id,
            segment_target_ms,
            cameras,
            json,
            insecure_plaintext,
            campus,
            metrics_listen,
            web_listen,
            allow_test_sources,
            hospital,
        } => {
            let metrics_listen = metrics_addr(metrics_listen, listen)?;
            let web_listen = web_addr(web_listen, listen)?;
            let cameras = cameras
                .iter()
                .map(|c| {
                    let (id, source) =
                        c.split_once('=').with_context(|| format!("--camera {c:?}: expected ID=SOURCE"))?;
                    Ok(SeedCamera { id: id.into(), source: source.into(), name: String::new(), sensitive: false })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let r = init(&InitOptions {
                data_dir: data,
                listen,
                node_id,
                segment_target_ms,
                cameras,
                insecure_plaintext,
                campus,
                metrics_listen,
                web_listen,
                allow_test_sources,
                hospital,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("Initialised node {} in {}", r.node_id, r.data_dir.display());
                println!("  config:            {}", r.config_file.display());
                println!("  archive recipient: {}", r.archive_recipient);
                println!(
                    "  archive identity:  {} (keep it secret; it decrypts all footage)",
                    r.archive_identity_file.display()
                );
                println!(
                    "  recovery identity: {}\n                     MOVE IT OFFLINE: with the backup bucket it rebuilds the cluster (custos-node restore)",
                    r.recovery_identity_file.display()
                );
                match &r.ca_file {
                    Some(ca) => println!(
                        "  client API:        https://{} (clients verify it with --ca {})",
                        r.listen,
                        ca.display()
                    ),
                    None => println!("  client API:        http://{} WITHOUT TLS (local development only)", r.listen),
                }
                match r.metrics_listen {
                    Some(m) => println!("  metrics:           http://{m}/metrics (Prometheus; plain HTTP, keep it on loopback or a management network)"),
                    None => println!("  metrics:           off"),
                }
                println!("Start it with: custos-node run --data {}", r.data_dir.display());
                println!(
                    "The founding approver ({}) decides what no administrator may do alone: changes to users, \
                     keys, nodes and retention (custos change approve), exports and hold releases. Their token is \
                     shown only now; hand it to them:",
                    r.approver_user
                );
                println!("{}", r.approver_token);
                println!("The administrator token is shown only now; store it safely:");
                println!("{}", r.admin_token);
            }
            Ok(())
        }
        Cmd::Run { data, config } => {
            let path = match (data, config) {
                (_, Some(c)) => c,
                (Some(d), None) => d.join(CONFIG_FILE_NAME),
                (None, None) => bail!("say which node to run: --data DIR or --config FILE"),
            };
            let config = NodeConfig::load(&path)?;
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,openraft=warn,openraft::replication=off,openraft::engine::handler::replication_handler=off".into()),
                )
                .with_writer(std::io::stderr)
                // Colour codes only for a terminal: a log file or the journal gets plain text.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("custos").build()?;
            let result = rt.block_on(async move {
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    wait_for_signal().await;
                    tracing::info!("shutdown requested; press Ctrl-C again to stop at once");
                    let _ = tx.send(true);
                    // A terminal signals the whole process group, and a wrapper script may
                    // forward the same Ctrl-C: repeats within a second are the same request.
                    let first = std::time::Instant::now();
                    loop {
                        wait_for_signal().await;
                        if first.elapsed() > std::time::Duration::from_secs(1) {
                            break;
                        }
                    }
                    tracing::warn!("second signal: stopping immediately");
                    std::process::exit(130);
                });
                custos_node::run(config, rx).await
            });
            custos_node::exit_after_stop(rt, result)
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
