//! Storing the catalog snapshot: finding the one it follows, sealing, signing and
//! uploading it.

use std::sync::Arc;

use object_store::ObjectStore;

use super::*;

impl BackupWorker {
    /// The hash the next snapshot names as its previous one: the last this worker stored,
    /// or on a new leader the newest in the bucket that opens and is signed by the
    /// cluster's key (a planted one is passed over, with a warning); "" when there is none.
    pub(super) async fn previous_snapshot(
        &self,
        objects: &Arc<dyn ObjectStore>,
        public: &str,
    ) -> std::result::Result<String, String> {
        if let Some(p) = self.state.lock().expect("backup state").previous_snapshot.clone() {
            return Ok(p);
        }
        let all = list_snapshots(objects, &self.cfg.prefix).await?;
        for (key, _, _) in all.iter().rev().take(snapshot::KEEP_SNAPSHOTS) {
            let Some(sealed) = restore::get_with_retries(objects, &ObjectPath::from(key.as_str()), None)
                .await
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let (keys, public) = (self.keys.clone(), public.to_string());
            let checked = tokio::task::spawn_blocking(move || {
                snapshot::SnapshotFile::open(&sealed, &keys, Some(&public)).map(|_| snapshot::object_blake3(&sealed))
            })
            .await
            .map_err(|e| e.to_string())?;
            match checked {
                Ok(hash) => return Ok(hash),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "a snapshot in the bucket is not the cluster's; not chained to")
                }
            }
        }
        Ok(String::new())
    }

    /// Stores a snapshot of the catalog and the keys, signed with the cluster's key and
    /// naming the one stored before it, then prunes old snapshots.
    pub async fn snapshot_now(&self, objects: &Arc<dyn ObjectStore>) -> std::result::Result<(), String> {
        if self.cluster_keys.signing_key_pkcs8.is_empty() {
            return Err(format!(
                "this node has no signing key ({}): it cannot sign catalog snapshots, so it stores none. Copy \
                 the cluster's signing key there from another node and restart it",
                crate::export::SIGNING_KEY_FILE
            ));
        }
        let signing = custos_evidence::export::SigningKey::from_pkcs8(&self.cluster_keys.signing_key_pkcs8)?;
        let previous = self.previous_snapshot(objects, &signing.public_hex()).await?;
        let (index, state) = self.meta.read(|c| c.dump_state()).await.map_err(|e| e.to_string())?;
        let mut file = snapshot::SnapshotFile {
            format: snapshot::SNAPSHOT_FORMAT.into(),
            created_ms: self.meta.now_ms(),
            made_by: self.meta.node_id,
            applied_index: index,
            previous_blake3: previous,
            keys: self.cluster_keys.clone(),
            state_blake3: *blake3::hash(&state).as_bytes(),
            state,
            signature: String::new(),
        };
        let created = file.created_ms;
        let keys = self.keys.clone();
        let (sealed, sealed_blake3) = tokio::task::spawn_blocking(move || {
            file.sign(&signing);
            file.seal(&keys).map(|b| {
                let h = snapshot::object_blake3(&b);
                (b, h)
            })
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let key = snapshot::snapshot_key(&self.cfg.prefix, created, index);
        let size = sealed.len() as u64;
        let locker = self.locker();
        match &locker {
            Some(l) => l.put(&key, sealed, Some(floor_from(created)), false).await.map_err(|e| with_hint(&e))?,
            None => objects
                .put(&key, PutPayload::from(sealed))
                .await
                .map(|_| ())
                .map_err(|e| explain("storing", &key, &e))?,
        }
        tracing::info!(key = %key, bytes = size, log_index = index, "catalog snapshot stored");
        {
            let mut st = self.state.lock().expect("backup state");
            st.last_snapshot = Some((key.to_string(), created, size));
            st.previous_snapshot = Some(sealed_blake3);
        }
        let all = list_snapshots(objects, &self.cfg.prefix).await?;
        for (old, old_created, _) in all.iter().take(all.len().saturating_sub(snapshot::KEEP_SNAPSHOTS)) {
            let p = ObjectPath::from(old.as_str());
            let pruned = match &locker {
                // Under Object Lock a snapshot stays for the floor; then each version goes.
                Some(_) if floor_from(*old_created) > self.meta.now_ms() => continue,
                Some(l) => l.delete_versions(&p).await.map(|_| ()),
                None => objects.delete(&p).await.map_err(|e| e.to_string()),
            };
            if let Err(e) = pruned {
                tracing::warn!(key = %old, error = %e, "cannot prune an old snapshot");
            }
        }
        Ok(())
    }
}
