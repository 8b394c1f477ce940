//! What a starting node commits once, each step idempotent across restarts: the founding
//! node's registration and first users (from the files `custos-node init` left), the
//! config's seed cameras, and this node's pinned certificate key.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::meta::{self, Camera, Command, Meta, User};
use crate::{access, audit, clock, config, ingest, init, tls, wait_shutdown, NodeConfig, Shutdown};

/// Pins this node's certificate key in the catalog (`Command::PinNodeKey`) unless it
/// is pinned already: nodes that joined before keys were pinned, the founding node and
/// a restored one pin themselves. Retries until it is committed or `shutdown`.
pub(crate) async fn pin_own_key(meta: Meta, cert_pem: String, shutdown: Shutdown) {
    let key_hash = match tls::first_cert_der(&cert_pem).map_err(|e| e.to_string()).and_then(|d| tls::cert_key_hash(&d))
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot read this node's certificate to pin its key");
            return;
        }
    };
    let id = meta.node_id;
    let mut stop = std::pin::pin!(wait_shutdown(shutdown));
    loop {
        match meta.read(move |c| c.node_key(id)).await {
            Ok(Some(h)) if h == key_hash => return,
            Ok(Some(_)) => {
                tracing::error!(node = id, "this node's certificate is not the one pinned for it in the catalog: its peers will refuse it. Was keys/node.pem replaced? Restore the node's own certificate and key");
                return;
            }
            Ok(None) => match meta.propose(Command::PinNodeKey { id, key_hash }).await {
                Ok(meta::Response::Ok) => {
                    tracing::info!(node = id, "pinned this node's certificate key in the catalog");
                    return;
                }
                Ok(other) => tracing::warn!(node = id, result = ?other, "pinning this node's certificate key"),
                Err(e) => tracing::warn!(node = id, error = %e, "pinning this node's certificate key; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "reading the pinned key"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = &mut stop => return,
        }
    }
}

/// Registers the founding node in the catalog's node list, once.
pub(crate) async fn register_founder(meta: &Meta, config: &NodeConfig, data: &std::path::Path) -> Result<()> {
    if !data.join(init::BOOTSTRAP_FILE).exists() || !meta.read(|c| c.nodes()).await?.is_empty() {
        return Ok(());
    }
    let cmd = Command::RegisterNode {
        campus: config.campus.clone(),
        addr: config.advertise_addr(),
        token_hash: None,
        founder: Some(config.node_id),
    };
    match meta.propose(cmd).await? {
        meta::Response::Created(_) => {
            tracing::info!(node = config.node_id, campus = %config.campus, "founding node registered");
            Ok(())
        }
        other => Err(Error::Internal(format!("registering the founding node: {other:?}"))),
    }
}

/// Commits the administrator that `init` prepared, once, then forgets the file.
pub(crate) async fn bootstrap_admin(meta: &Meta, data: &std::path::Path, clock: &clock::SharedClock) -> Result<()> {
    let path = data.join(init::BOOTSTRAP_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let boot: init::Bootstrap =
        serde_json::from_str(&text).map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    let hash_of = |hex_hash: &str| {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex_hash, &mut hash)
            .map(|_| hash)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
    };
    if meta.read(|c| c.user_count()).await? == 0 {
        let now = clock.now_ms();
        let founder = |name: &str, role, hash: [u8; 32]| {
            let user = User { name: name.into(), role, case: None, disabled: false, grants: vec![], created_ms: 0 };
            let token = meta::TokenRecord {
                id: hex::encode(&hash[..6]),
                user: name.into(),
                created_ms: 0,
                expires_ms: now + access::TOKEN_TTL_DEFAULT_MS,
                revoked: false,
                issued_by: "init".into(),
            };
            (user, hash, token)
        };
        let founders = vec![
            founder(&boot.name, access::Role::Admin, hash_of(&boot.token_blake3)?),
            founder(&boot.approver, access::Role::Approver, hash_of(&boot.approver_token_blake3)?),
        ];
        let ev = audit::AuditEvent {
            user: "-".into(),
            action: audit::AuditAction::Found,
            outcome: audit::Outcome::Ok,
            detail: format!(
                "cluster founded by custos-node init: administrator {}, approver {}",
                boot.name, boot.approver
            ),
            ..Default::default()
        };
        match meta.propose_audited(Command::FoundCluster(founders), ev).await? {
            meta::Response::Rejected(_, why) => tracing::warn!(%why, "founding users not committed"),
            _ => tracing::info!(admin = %boot.name, approver = %boot.approver, "founding users committed"),
        }
    }
    std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
    Ok(())
}

/// Registers the config's seed cameras, once per cluster. The catalog records every id
/// seeded (`Command::SeedCamera`), so a seed camera an administrator removed does not
/// come back when this or another node restarts with the same file. Each registration is
/// audited as coming from the node's config file.
pub(crate) async fn seed_cameras(meta: &Meta, config: &NodeConfig) -> Result<()> {
    for seed in &config.cameras {
        let id = seed.id.clone();
        let (seeded, exists) = meta.read(move |c| Ok((c.camera_seeded(&id)?, c.camera(&id)?.is_some()))).await?;
        if seeded {
            continue;
        }
        let cam = Camera {
            id: seed.id.clone(),
            name: seed.name.clone(),
            source: seed.source.clone(),
            recorder: meta.node_id,
            added_ms: 0,
            sensitive: seed.sensitive,
        };
        if exists {
            // Registered before seeds were recorded: only note that it was seeded.
            meta.propose(Command::SeedCamera(cam)).await?;
            continue;
        }
        let ev = audit::AuditEvent {
            user: "-".into(),
            action: audit::AuditAction::CameraAdd,
            outcome: audit::Outcome::Ok,
            cameras: vec![seed.id.clone()],
            client: format!("node {}", meta.node_id),
            detail: format!(
                "seed camera {} from the [[camera]] list of node {}'s config file ({}) source={} sensitive={}",
                seed.id,
                meta.node_id,
                config::CONFIG_FILE_NAME,
                ingest::redact(&seed.source),
                seed.sensitive
            ),
            ..Default::default()
        };
        match meta.propose_audited(Command::SeedCamera(cam), ev).await? {
            meta::Response::Rejected(_, why) => tracing::info!(camera = %seed.id, %why, "seed camera not registered"),
            _ => tracing::info!(camera = %seed.id, "seed camera registered from the config file"),
        }
    }
    Ok(())
}
