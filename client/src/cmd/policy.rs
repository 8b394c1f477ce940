//! `custos policy show|set`: retention policies (30-day floor; administrators set them).

use clap::Subcommand;
use custos_client::Client;
use serde_json::json;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Show the default policy and every camera's own.
    Show {
        /// Only the policy that governs this camera.
        #[arg(long)]
        camera: Option<String>,
    },
    /// Set the default policy, or one camera's with --camera. min-days below 30 is refused.
    Set {
        #[arg(long)]
        camera: Option<String>,
        /// Footage is kept at least this many days (30 or more).
        #[arg(long)]
        min_days: u32,
        /// Footage is deleted after this many days (at least min-days).
        #[arg(long)]
        max_days: u32,
    },
}

pub async fn run(client: &Client, cmd: PolicyCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        PolicyCmd::Show { camera } => {
            let (default, cams) = client.list_policies().await?;
            let mut rows: Vec<(String, u32, u32, &str)> = Vec::new();
            match &camera {
                Some(c) => {
                    let (p, source) = match cams.iter().find(|p| &p.camera == c) {
                        Some(p) => (p, "camera"),
                        None => (&default, "default"),
                    };
                    rows.push((c.clone(), p.min_days, p.max_days, source));
                }
                None => {
                    rows.push(("(default)".into(), default.min_days, default.max_days, "default"));
                    rows.extend(cams.iter().map(|p| (p.camera.clone(), p.min_days, p.max_days, "camera")));
                }
            }
            if as_json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(c, min, max, src)| json!({"camera": c, "min_days": min, "max_days": max, "from": src}))
                    .collect();
                super::print_json(&json!(v));
            } else {
                println!("{:<24} {:>8} {:>8} FROM", "CAMERA", "MIN DAYS", "MAX DAYS");
                for (c, min, max, src) in rows {
                    println!("{c:<24} {min:>8} {max:>8} {src}");
                }
            }
        }
        PolicyCmd::Set { camera, min_days, max_days } => {
            if let Some(change) = client.set_policy(camera.as_deref(), min_days, max_days).await? {
                return super::pending(change, as_json);
            }
            let target = camera.clone().unwrap_or_else(|| "the default".into());
            if as_json {
                super::print_json(&json!({"camera": camera, "min_days": min_days, "max_days": max_days}));
            } else {
                println!("retention for {target}: keep at least {min_days} days, delete after {max_days} days");
            }
        }
    }
    Ok(())
}
