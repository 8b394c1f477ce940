//! `custos change …`: the change queue. Administrators' changes to roots of trust (users
//! who may view footage or decide, tokens for others, grants, cleared sensitive flags,
//! removed cameras, shorter retention, nodes joining or leaving) wait here until an
//! approver other than the requester accepts or rejects them.

use clap::Subcommand;
use custos_client::text::terminal;
use custos_client::time::format_ms;
use custos_client::Client;
use custos_proto::v1 as pb;
use serde_json::json;

#[derive(Subcommand)]
pub enum ChangeCmd {
    /// Pending changes (administrators, approvers, auditors); --all adds decided and lapsed ones.
    List {
        #[arg(long)]
        all: bool,
    },
    /// One change: what it does, why it needs a second person, who asked and who decided.
    Show { id: u64 },
    /// Accept a change (approvers; never your own): it takes effect now. A change that
    /// creates a user or issues a token prints that token once: hand it to its owner.
    Approve {
        id: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Reject a change, saying why: nothing of it takes effect.
    Reject {
        id: u64,
        #[arg(long)]
        reason: String,
    },
}

pub fn change_json(c: &pb::Change) -> serde_json::Value {
    json!({
        "change_id": c.id, "state": c.state, "action": c.action, "detail": c.detail, "why": c.why,
        "requested_by": c.requested_by, "requested": format_ms(c.requested_ms), "expires": format_ms(c.expires_ms),
        "decided_by": (!c.decided_by.is_empty()).then_some(&c.decided_by),
        "decided": (c.decided_ms != 0).then(|| format_ms(c.decided_ms)),
        "note": (!c.note.is_empty()).then_some(&c.note),
    })
}

fn print_change(c: &pb::Change) {
    println!("change {} ({})", c.id, c.state);
    println!("  action:       {} {}", c.action, terminal(&c.detail));
    println!("  why:          {}", terminal(&c.why));
    println!("  requested by: {} at {}", c.requested_by, format_ms(c.requested_ms));
    if c.state == "pending" {
        println!("  lapses:       {} if nobody decides", format_ms(c.expires_ms));
    }
    if !c.decided_by.is_empty() {
        println!("  decided by:   {} at {}", c.decided_by, format_ms(c.decided_ms));
    }
    if !c.note.is_empty() {
        println!("  note:         {}", terminal(&c.note));
    }
}

pub async fn run(client: &Client, cmd: ChangeCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        ChangeCmd::List { all } => {
            let v = client.list_changes(all).await?;
            if as_json {
                super::print_json(&json!(v.iter().map(change_json).collect::<Vec<_>>()));
            } else if v.is_empty() {
                println!("{}", if all { "no changes yet" } else { "no pending changes" });
            } else {
                println!("{:<6} {:<9} {:<16} {:<26} {:<18} WHAT", "ID", "STATE", "REQUESTED BY", "REQUESTED", "ACTION");
                for c in &v {
                    println!(
                        "{:<6} {:<9} {:<16} {:<26} {:<18} {}",
                        c.id,
                        c.state,
                        c.requested_by,
                        format_ms(c.requested_ms),
                        c.action,
                        terminal(&c.detail)
                    );
                }
            }
        }
        ChangeCmd::Show { id } => {
            let c = client.get_change(id).await?;
            if as_json {
                super::print_json(&change_json(&c));
            } else {
                print_change(&c);
            }
        }
        ChangeCmd::Approve { id, note } => {
            let d = client.decide_change(id, true, &note).await?;
            let c = d.change.unwrap_or_default();
            if as_json {
                let mut v = change_json(&c);
                if let Some(t) = &d.token {
                    v["token"] = json!({"user": t.user, "token_id": t.token_id, "expires": format_ms(t.expires_ms), "token": t.token});
                }
                if !d.created.is_empty() {
                    v["created"] = json!(d.created);
                }
                super::print_json(&v);
            } else {
                println!("change {id} approved: {} {} took effect", c.action, terminal(&c.detail));
                if !d.created.is_empty() {
                    println!("created: {}", d.created);
                }
                if let Some(t) = &d.token {
                    println!(
                        "token {} for {} expires {}. Hand it to {} in person; it is shown only now:",
                        t.token_id,
                        t.user,
                        format_ms(t.expires_ms),
                        t.user
                    );
                    println!("{}", t.token);
                }
            }
        }
        ChangeCmd::Reject { id, reason } => {
            let d = client.decide_change(id, false, &reason).await?;
            let c = d.change.unwrap_or_default();
            if as_json {
                super::print_json(&change_json(&c));
            } else {
                println!("change {id} rejected: nothing of it took effect");
            }
        }
    }
    Ok(())
}
