//! `custos user …` and `custos token …`: people and their credentials (administrators).

use clap::Subcommand;
use custos_client::time::format_ms;
use custos_client::{Client, TokenIssued};
use serde_json::json;

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user; prints their token once, alone on the last line. A user who may view
    /// footage or decide (operator, security, approver, investigator) waits for an approver
    /// instead, who receives the token when accepting (`custos change approve`).
    Add {
        name: String,
        /// operator, security, approver, auditor, admin or investigator.
        #[arg(long)]
        role: String,
        /// For investigators: the one case they may read.
        #[arg(long = "case")]
        case_id: Option<String>,
        /// Token lifetime in days (default 90, at most 366).
        #[arg(long, default_value_t = 0)]
        ttl_days: u32,
    },
    /// List users with their roles, grants and state.
    List,
    /// Disable a user at once, on every node (departing staff).
    Disable { name: String },
    /// Clear a user's web-console password and end their console sessions, through the
    /// change queue: the approver who accepts receives a new token for the user, which is
    /// their enrolment code for setting a password again.
    ResetPassword { name: String },
    /// Allow a user to view a sensitive camera (or withdraw it with --revoke).
    Grant {
        name: String,
        #[arg(long)]
        camera: String,
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Issue another token: your own at once (renewal, any role; printed once, alone on
    /// the last line), or, as an administrator, someone else's through the change queue
    /// (the approver who accepts it receives the token).
    Issue {
        user: String,
        #[arg(long, default_value_t = 0)]
        ttl_days: u32,
    },
    /// List tokens (ids only; secrets are never stored).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id (or by the token itself); effective at once on every node.
    Revoke { id: String },
}

fn print_issued(t: &TokenIssued, as_json: bool, what: &str) {
    if as_json {
        super::print_json(
            &json!({"user": t.user, "token_id": t.token_id, "expires": format_ms(t.expires_ms), "token": t.token}),
        );
    } else {
        println!(
            "{what}; token {} expires {}. The token is shown only now; it is also the enrolment code with which {} \
             sets a password in the web console:",
            t.token_id,
            format_ms(t.expires_ms),
            t.user
        );
        println!("{}", t.token);
    }
}

pub async fn run_user(client: &Client, cmd: UserCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add { name, role, case_id, ttl_days } => {
            let t = client.add_user(&name, &role, case_id.as_deref(), ttl_days).await?;
            if t.change_id != 0 {
                return super::pending(t.change_id, as_json);
            }
            print_issued(&t, as_json, &format!("user {name} ({role}) created"));
        }
        UserCmd::List => {
            let users = client.list_users().await?;
            if as_json {
                let v: Vec<_> = users
                    .iter()
                    .map(|u| json!({"name": u.name, "role": u.role, "case": (!u.case_id.is_empty()).then_some(&u.case_id), "disabled": u.disabled, "grants": u.grants, "created": format_ms(u.created_ms)}))
                    .collect();
                super::print_json(&json!(v));
            } else {
                println!("{:<20} {:<13} {:<10} {:<14} GRANTS", "NAME", "ROLE", "STATE", "CASE");
                for u in &users {
                    let state = if u.disabled { "disabled" } else { "active" };
                    println!("{:<20} {:<13} {:<10} {:<14} {}", u.name, u.role, state, u.case_id, u.grants.join(","));
                }
            }
        }
        UserCmd::Disable { name } => {
            client.disable_user(&name).await?;
            ok(
                as_json,
                json!({"disabled": name}),
                &format!("user {name} disabled; their tokens are refused from now on"),
            );
        }
        UserCmd::ResetPassword { name } => {
            let t = client.reset_password(&name).await?;
            return super::pending(t.change_id, as_json);
        }
        UserCmd::Grant { name, camera, revoke } => {
            if let Some(change) = client.grant_camera(&name, &camera, !revoke).await? {
                return super::pending(change, as_json);
            }
            let msg = if revoke {
                format!("{name} may no longer view {camera}")
            } else {
                format!("{name} may now view sensitive camera {camera}")
            };
            ok(as_json, json!({"user": name, "camera": camera, "granted": !revoke}), &msg);
        }
    }
    Ok(())
}

pub async fn run_token(client: &Client, cmd: TokenCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Issue { user, ttl_days } => {
            let t = client.issue_token(&user, ttl_days).await?;
            if t.change_id != 0 {
                return super::pending(t.change_id, as_json);
            }
            print_issued(&t, as_json, &format!("new token for {user}"));
        }
        TokenCmd::List { user } => {
            let tokens = client.list_tokens(user.as_deref()).await?;
            if as_json {
                let v: Vec<_> = tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "user": t.user, "created": format_ms(t.created_ms), "expires": format_ms(t.expires_ms), "revoked": t.revoked, "issued_by": t.issued_by}))
                    .collect();
                super::print_json(&json!(v));
            } else {
                println!("{:<14} {:<20} {:<26} {:<26} {:<8} ISSUED BY", "ID", "USER", "CREATED", "EXPIRES", "STATE");
                for t in &tokens {
                    let state = if t.revoked { "revoked" } else { "valid" };
                    println!(
                        "{:<14} {:<20} {:<26} {:<26} {:<8} {}",
                        t.id,
                        t.user,
                        format_ms(t.created_ms),
                        format_ms(t.expires_ms),
                        state,
                        t.issued_by
                    );
                }
            }
        }
        TokenCmd::Revoke { id } => {
            client.revoke_token(&id).await?;
            ok(as_json, json!({"revoked": true}), "token revoked; it is refused from now on");
        }
    }
    Ok(())
}

fn ok(as_json: bool, v: serde_json::Value, msg: &str) {
    if as_json {
        super::print_json(&v);
    } else {
        println!("{msg}");
    }
}
