//! `custos camera add|list|remove|confirm|standby`.

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
        /// Give the camera a hot standby: a node on another campus receives it too and
        /// takes over, losing under a second, if the recorder fails. Costs a second RTSP
        /// session and the camera's bitrate again on the network; a camera that serves
        /// only one session is refused.
        #[arg(long)]
        standby: bool,
    },
    /// Give a camera a hot standby on another node (--off to remove it).
    Standby {
        id: String,
        #[arg(long)]
        off: bool,
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
    /// The parts of a camera's picture that redacted exports fill in (a bed, a window
    /// into a ward). Every change waits for an approver.
    #[command(subcommand, name = "privacy-zone")]
    PrivacyZone(ZoneCmd),
}

#[derive(Subcommand)]
pub enum ZoneCmd {
    /// Add a zone: `x,y,w,h` (a rectangle) or `"x1,y1 x2,y2 x3,y3 …"` (a polygon), in
    /// fractions of the picture (0,0 is its top left; 0.5 is half way).
    Add {
        camera: String,
        #[arg(long)]
        zone: String,
    },
    /// The zones of one camera, or of every camera that has some.
    List { camera: Option<String> },
    /// Remove zone N (as `list` numbers them) of a camera.
    Remove { camera: String, n: usize },
}

pub fn camera_json(c: &Camera) -> serde_json::Value {
    json!({"id": c.id, "name": c.name, "source": c.source, "recorder": c.recorder, "standby": (c.standby != 0).then_some(c.standby), "standby_wanted": c.standby_wanted, "added": format_ms(c.added_ms), "sensitive": c.sensitive, "privacy_zones": c.privacy_zones})
}

async fn zones(client: &Client, cmd: ZoneCmd, as_json: bool) -> anyhow::Result<()> {
    let cams = client.list_cameras().await?;
    let of = |id: &str| {
        cams.iter()
            .find(|c| c.id == id)
            .map(|c| c.privacy_zones.clone())
            .ok_or_else(|| anyhow::anyhow!("camera {id} does not exist (`custos camera list`)"))
    };
    let (camera, zones) = match cmd {
        ZoneCmd::List { camera } => {
            let shown: Vec<&Camera> =
                cams.iter().filter(|c| camera.as_ref().map_or(!c.privacy_zones.is_empty(), |id| &c.id == id)).collect();
            if let Some(id) = &camera {
                of(id)?;
            }
            if as_json {
                super::print_json(&json!(shown
                    .iter()
                    .map(|c| json!({"camera": c.id, "zones": c.privacy_zones}))
                    .collect::<Vec<_>>()));
            } else if shown.iter().all(|c| c.privacy_zones.is_empty()) {
                println!("no privacy zones; add one with `custos camera privacy-zone add CAMERA --zone x,y,w,h`");
            } else {
                for c in shown {
                    for (n, z) in c.privacy_zones.iter().enumerate() {
                        println!("{:<24} {:>2}  {z}", c.id, n + 1);
                    }
                }
            }
            return Ok(());
        }
        ZoneCmd::Add { camera, zone } => {
            let mut zones = of(&camera)?;
            zones.push(zone);
            (camera, zones)
        }
        ZoneCmd::Remove { camera, n } => {
            let mut zones = of(&camera)?;
            if n == 0 || n > zones.len() {
                anyhow::bail!(
                    "camera {camera} has {} privacy zones; `custos camera privacy-zone list {camera}` numbers them",
                    zones.len()
                );
            }
            zones.remove(n - 1);
            (camera, zones)
        }
    };
    match client.set_privacy_zones(&camera, &zones).await? {
        Some(change) => super::pending(change, as_json),
        None => {
            if as_json {
                super::print_json(&json!({"camera": camera, "zones": zones}));
            } else {
                println!("camera {camera} has {} privacy zones", zones.len());
            }
            Ok(())
        }
    }
}

pub async fn run(client: &Client, cmd: CameraCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        CameraCmd::PrivacyZone(z) => return zones(client, z, as_json).await,
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
        CameraCmd::Add { id, source, name, sensitive, standby } => {
            let c = client.add_camera_full(&id, &source, &name, sensitive, standby).await?;
            if as_json {
                let mut j = camera_json(&c);
                j["standby_wanted"] = json!(standby);
                super::print_json(&j);
            } else {
                println!("camera {} added; node {} records it", c.id, c.recorder);
                if standby {
                    println!("the leader chooses its standby within a second: see `custos camera list`");
                }
            }
        }
        CameraCmd::Standby { id, off } => {
            client.set_camera_standby(&id, !off).await?;
            if as_json {
                super::print_json(&json!({"camera": id, "standby_wanted": !off}));
            } else if off {
                println!(
                    "camera {id} has no standby any more: a failed recorder costs the seconds a cold failover takes"
                );
            } else {
                println!("camera {id} gets a standby on another node within a second: see `custos camera list`");
            }
        }
        CameraCmd::List => {
            let cams = client.list_cameras().await?;
            if as_json {
                super::print_json(&json!(cams.iter().map(camera_json).collect::<Vec<_>>()));
            } else if cams.is_empty() {
                println!("no cameras; add one with `custos camera add ID --source URL`");
            } else {
                println!("{:<24} {:<8} {:<8} {:<24} {:<24} SOURCE", "ID", "RECORDER", "STANDBY", "NAME", "ADDED");
                for c in &cams {
                    let standby = match (c.standby, c.standby_wanted) {
                        (0, true) => "choosing".to_string(),
                        (0, false) => "-".to_string(),
                        (n, _) => n.to_string(),
                    };
                    println!(
                        "{:<24} {:<8} {:<8} {:<24} {:<24} {}",
                        c.id,
                        c.recorder,
                        standby,
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
