//! `custos hold place|list|show|release`: legal and incident holds.

use clap::Subcommand;
use custos_client::text::terminal;
use custos_client::time::{format_ms, now_ms, parse_time_ms};
use custos_client::{Client, Hold};
use serde_json::json;

#[derive(Subcommand)]
pub enum HoldCmd {
    /// Place a hold: protects the cameras' footage over the range from every expiry.
    Place {
        /// The case or incident the hold is for.
        #[arg(long = "case")]
        case_id: String,
        /// A camera to hold (repeat for several).
        #[arg(long = "camera", required = true)]
        cameras: Vec<String>,
        /// Start: RFC 3339, `now`, or an offset like -2h.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// End; leave out to hold everything from --from on, including footage still to come.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Why the footage must be kept.
        #[arg(long)]
        reason: String,
    },
    /// List active holds (--all includes released ones).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Show one hold.
    Show { id: String },
    /// Approve releasing a hold; it is released when a second, different person approves.
    Release { id: String },
}

fn hold_json(h: &Hold) -> serde_json::Value {
    json!({
        "id": h.id, "case": h.case_id, "cameras": h.cameras, "from": format_ms(h.from_ms),
        "to": (h.to_ms != 0).then(|| format_ms(h.to_ms)), "reason": h.reason, "placed_by": h.placed_by,
        "placed": format_ms(h.placed_ms), "release_approved_by": h.release_approved_by,
        "released": (h.released_ms != 0).then(|| format_ms(h.released_ms)),
    })
}

fn state(h: &Hold) -> String {
    if h.released_ms != 0 {
        format!("released {}", format_ms(h.released_ms))
    } else if h.release_approved_by.is_empty() {
        "active".into()
    } else {
        format!("active; release approved by {} (needs a second person)", h.release_approved_by.join(", "))
    }
}

fn print_hold(h: &Hold) {
    let to = if h.to_ms != 0 { format_ms(h.to_ms) } else { "(open: from now on)".into() };
    println!("hold {} for case {}", h.id, terminal(&h.case_id));
    println!("  cameras: {}", h.cameras.join(", "));
    println!("  range:   {} .. {}", format_ms(h.from_ms), to);
    println!("  reason:  {}", terminal(&h.reason));
    println!("  placed:  {} by {}", format_ms(h.placed_ms), terminal(&h.placed_by));
    println!("  state:   {}", state(h));
}

pub async fn run(client: &Client, cmd: HoldCmd, as_json: bool) -> anyhow::Result<()> {
    let now = now_ms();
    let time = |s: &str, flag: &str| parse_time_ms(s, now).map_err(|e| anyhow::anyhow!("{flag}: {e}"));
    match cmd {
        HoldCmd::Place { case_id, cameras, from, to, reason } => {
            let from_ms = time(&from, "--from")?;
            let to_ms = to.as_deref().map(|t| time(t, "--to")).transpose()?;
            let h = client.place_hold(&case_id, &cameras, from_ms, to_ms, &reason).await?;
            if as_json {
                super::print_json(&hold_json(&h));
            } else {
                print_hold(&h);
            }
        }
        HoldCmd::List { all } => {
            let holds = client.list_holds(all).await?;
            if as_json {
                super::print_json(&json!(holds.iter().map(hold_json).collect::<Vec<_>>()));
            } else if holds.is_empty() {
                println!("no {}holds", if all { "" } else { "active " });
            } else {
                println!("{:<10} {:<14} {:<25} {:<25} {:<24} STATE", "ID", "CASE", "FROM", "TO", "CAMERAS");
                for h in &holds {
                    let to = if h.to_ms != 0 { format_ms(h.to_ms) } else { "open".into() };
                    println!(
                        "{:<10} {:<14} {:<25} {:<25} {:<24} {}",
                        h.id,
                        terminal(&h.case_id),
                        format_ms(h.from_ms),
                        to,
                        h.cameras.join(","),
                        state(h)
                    );
                }
            }
        }
        HoldCmd::Show { id } => {
            let h = client
                .list_holds(true)
                .await?
                .into_iter()
                .find(|h| h.id == id)
                .ok_or_else(|| anyhow::anyhow!("hold {id} does not exist"))?;
            if as_json {
                super::print_json(&hold_json(&h));
            } else {
                print_hold(&h);
            }
        }
        HoldCmd::Release { id } => {
            let h = client.approve_release(&id).await?;
            if as_json {
                super::print_json(&hold_json(&h));
            } else if h.released_ms != 0 {
                println!("hold {id} released (approved by {})", h.release_approved_by.join(" and "));
            } else {
                println!("your approval is recorded; hold {id} stays active until a second, different person approves its release");
            }
        }
    }
    Ok(())
}
