//! `custos nodes` and `custos node join-token|remove|confirm-clock`.

use clap::Subcommand;
use custos_client::time::format_ms;
use custos_client::Client;
use serde_json::json;

#[derive(Subcommand)]
pub enum NodeCmd {
    /// Print a single-use token that lets one new node join:
    /// `custos-node join --data DIR --campus NAME --listen ADDR --cluster ADDR --token T`.
    /// The token is inert until an approver accepts the change it opens.
    JoinToken {
        /// Lifetime in seconds (default one hour, at most seven days).
        #[arg(long, default_value_t = 0)]
        ttl: u64,
    },
    /// Retire a node: it leaves the Raft group, its cameras move to live nodes and its
    /// copies are made again elsewhere.
    Remove {
        /// Node id (see `custos nodes`).
        id: u64,
    },
    /// Confirm that a node's clock jumped forward on purpose (alarm `clock-jump`): the
    /// node expires footage again at its new time. Always a pending change that an
    /// approver accepts.
    ConfirmClock {
        /// Node id (the alarm's subject).
        id: u64,
    },
    /// Same as `custos nodes`.
    List,
}

fn gib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1u64 << 30) as f64)
}

/// A node's clock against the cluster's median: `+0.3s`, `-2.1s`, `+40d`, or `?`.
pub fn clock(n: &custos_proto::v1::NodeInfo) -> String {
    if !n.clock_known {
        return "?".into();
    }
    let ms = n.clock_offset_ms;
    let sign = if ms < 0 { '-' } else { '+' };
    let a = ms.unsigned_abs();
    match a {
        a if a < 100_000 => format!("{sign}{:.1}s", a as f64 / 1000.0),
        // Rounded: a clock 40 days ahead measures a few ms short of it.
        a if a < 2 * 86_400_000 => format!("{sign}{}min", (a + 30_000) / 60_000),
        a => format!("{sign}{}d", (a + 43_200_000) / 86_400_000),
    }
}

pub async fn list(client: &Client, as_json: bool) -> anyhow::Result<()> {
    let r = client.list_nodes().await?;
    let under = (r.under_replicated != u64::MAX).then_some(r.under_replicated);
    if as_json {
        super::print_json(&json!({
            "leader": r.leader,
            "replication_factor": r.replication_factor,
            "under_replicated": under,
            "nodes": r.nodes.iter().map(|n| json!({
                "id": n.id, "campus": n.campus, "addr": n.addr, "raft_role": n.raft_role, "health": n.health,
                "last_seen_ago_ms": (n.last_seen_ago_ms != u64::MAX).then_some(n.last_seen_ago_ms),
                "disk_free_bytes": n.disk_free_bytes, "disk_total_bytes": n.disk_total_bytes,
                "cameras": n.cameras, "joined": format_ms(n.joined_ms),
                "disk_low": n.disk_low, "disk_floor_bytes": n.disk_floor_bytes,
                "clock_offset_ms": n.clock_known.then_some(n.clock_offset_ms),
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "{:<4} {:<12} {:<22} {:<9} {:<6} {:>14} {:>7} {:>10}",
        "ID", "CAMPUS", "ADDRESS", "RAFT", "HEALTH", "DISK FREE GiB", "CAMERAS", "CLOCK"
    );
    for n in &r.nodes {
        println!(
            "{:<4} {:<12} {:<22} {:<9} {:<6} {:>14} {:>7} {:>10}",
            n.id,
            n.campus,
            custos_client::text::terminal(&n.addr),
            n.raft_role,
            n.health,
            format!("{}{}/{}", if n.disk_low { "LOW " } else { "" }, gib(n.disk_free_bytes), gib(n.disk_total_bytes)),
            n.cameras,
            clock(n)
        );
    }
    match under {
        Some(u) => println!("replication factor {}; {u} segments under-replicated", r.replication_factor),
        None => println!("replication factor {}; under-replicated count not known yet", r.replication_factor),
    }
    Ok(())
}

pub async fn run(client: &Client, cmd: NodeCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        NodeCmd::List => list(client, as_json).await,
        NodeCmd::JoinToken { ttl } => {
            let t = client.join_token(ttl).await?;
            let pending = t.change_id != 0;
            if as_json {
                let mut v = json!({"token": t.token, "expires": format_ms(t.expires_ms)});
                if pending {
                    v["change_id"] = json!(t.change_id);
                    v["state"] = json!("pending");
                }
                super::print_json(&v);
            } else {
                // The token alone on stdout, so scripts can capture it; the rest to stderr.
                println!("{}", t.token);
                if pending {
                    eprintln!(
                        "pending change {}: the token is inert until an approver runs `custos change approve {}`; \
                         a node presenting it before then is refused and receives nothing",
                        t.change_id, t.change_id
                    );
                    eprintln!("single use; its lifetime counts from the approval");
                } else {
                    eprintln!("single use, valid until {}", format_ms(t.expires_ms));
                }
            }
            Ok(())
        }
        NodeCmd::ConfirmClock { id } => {
            let change = client.confirm_clock(id).await?;
            super::pending(change, as_json)
        }
        NodeCmd::Remove { id } => {
            if let Some(change) = client.remove_node(id).await? {
                return super::pending(change, as_json);
            }
            if as_json {
                super::print_json(&json!({"retired": id}));
            } else {
                println!("node {id} retired; its cameras move and its copies are repaired (watch `custos nodes`)");
            }
            Ok(())
        }
    }
}
