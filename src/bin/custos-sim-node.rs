//! `custos-sim-node`: `custos-node run` on a clock tests can move. For the test harness
//! only; deployments run `custos-node`, whose clock is always the system's.
//!
//! The node's time is the system time plus an offset in milliseconds read from the file
//! named by `CUSTOS_SIM_CLOCK` (re-read on every call; a missing or empty file means 0).
//! A test jumps the whole cluster 91 days ahead by writing one number into one file.
//!
//! Usage: `CUSTOS_SIM_CLOCK=FILE custos-sim-node --data DIR`

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use custos_node::clock::{Clock, SystemClock};
use custos_node::config::{NodeConfig, CONFIG_FILE_NAME};

#[derive(Parser)]
#[command(name = "custos-sim-node", about = "custos-node on a simulated clock (tests only)")]
struct Cli {
    /// Data directory made by `custos-node init` or `join`.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

/// System time plus the offset stored in a file.
#[derive(Debug)]
struct OffsetClock {
    file: PathBuf,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.file).ok().and_then(|t| t.trim().parse::<i64>().ok()).unwrap_or(0);
        SystemClock.now_ms() + offset
    }
}

fn main() -> anyhow::Result<()> {
    custos_node::owner_only_umask();
    let cli = Cli::parse();
    let file = PathBuf::from(std::env::var("CUSTOS_SIM_CLOCK").context("set CUSTOS_SIM_CLOCK to the offset file")?);
    let config = NodeConfig::load(&cli.data.join(CONFIG_FILE_NAME))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or the journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tracing::warn!(clock_file = %file.display(), "SIMULATED CLOCK: this node's time is moved by a test");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = tx.send(true);
        });
        custos_node::run_with_clock(config, rx, Arc::new(OffsetClock { file })).await
    });
    custos_node::exit_after_stop(rt, result)
}
