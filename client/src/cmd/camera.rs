//! `custos camera add|list|remove|confirm`.

use clap::Subcommand;
use custos_client::time::format_ms;
use custos_client::{Camera, Client};
use serde_json::json;

#[derive(Subcommand)]
pub enum CameraCmd {
    /// Register a camera; its recorder starts at once.
    Add {
        /// Camera id (letters, digits, '-', '_', '.').
        id: String,
        /// rtsp://user:pass@host/stream, file:///path/clip.mp4 or test://[pattern].
        #[arg(long)]
        source: String,
        /// Human-readable name.
        #[arg(long, default_value = "")]
        name: String,
        /// Sensitive zone (operating theatre, ward): viewing needs an explicit grant.
        #[arg(long)]
        sensitive: bool,
    },
    /// Mark a camera as in a sensitive zone (--off to clear).
    Sensitive {
        id: String,
        #[arg(long)]
        off: bool,
    },
    /// List cameras.
    List,
    /// Stop recording a camera. Its footage stays under retention.
    Remove { id: String },
    /// Take the camera's next healthy picture as its reference still, after it was
    /// re-aimed on purpose (clears `camera-picture` "turned"). Waits for an approver.
    Confirm { id: String },
}

pub fn camera_json(c: &Camera) -> serde_json::Value {
    json!({"id": c.id, "name": c.name, "source": c.source, "recorder": c.recorder, "added": format_ms(c.added_ms), "sensitive": c.sensitive})
}

pub async fn run(client: &Client, cmd: CameraCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        CameraCmd::Sensitive { id, off } => {
            if let Some(change) = client.set_camera_sensitive(&id, !off).await? {
                return super::pending(change, as_json);
            }
            if as_json {
                super::print_json(&json!({"camera": id, "sensitive": !off}));
            } else if off {
                println!("camera {id} is no longer sensitive");
            } else {
                println!("camera {id} is sensitive: only users granted it may view it");
            }
        }
        CameraCmd::Add { id, source, name, sensitive } => {
            let c = client.add_camera_with(&id, &source, &name, sensitive).await?;
            if as_json {
                super::print_json(&camera_json(&c));
            } else {
                println!("camera {} added; node {} records it", c.id, c.recorder);
            }
        }
        CameraCmd::List => {
            let cams = client.list_cameras().await?;
            if as_json {
                super::print_json(&json!(cams.iter().map(camera_json).collect::<Vec<_>>()));
            } else if cams.is_empty() {
                println!("no cameras; add one with `custos camera add ID --source URL`");
            } else {
                println!("{:<24} {:<8} {:<24} {:<24} SOURCE", "ID", "RECORDER", "NAME", "ADDED");
                for c in &cams {
                    println!(
                        "{:<24} {:<8} {:<24} {:<24} {}",
                        c.id,
                        c.recorder,
                        custos_client::text::terminal(&c.name),
                        format_ms(c.added_ms),
                        custos_client::text::terminal(&c.source)
                    );
                }
            }
        }
        CameraCmd::Confirm { id } => {
            let change = client.confirm_camera(&id).await?;
            return super::pending(change, as_json);
        }
        CameraCmd::Remove { id } => {
            if let Some(change) = client.remove_camera(&id).await? {
                return super::pending(change, as_json);
            }
            if as_json {
                super::print_json(&json!({"removed": id}));
            } else {
                println!("camera {id} no longer recorded; its footage stays under retention");
            }
        }
    }
    Ok(())
}
