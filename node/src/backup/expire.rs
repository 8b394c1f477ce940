//! The bucket's side of expiry: deleting packs whose footage has all expired, following
//! the catalog's bucket trash, and retrying those Object Lock still protects.

use std::sync::Arc;

use object_store::ObjectStore;

use super::*;

impl BackupWorker {
    /// Deletes from the bucket the packs whose footage has all expired, following the
    /// catalog's bucket trash from the cursor stored in the bucket.
    pub(super) async fn expire_round(&self, objects: &Arc<dyn ObjectStore>) -> std::result::Result<(), String> {
        let cursor_key = snapshot::under(&self.cfg.prefix, TRASH_CURSOR);
        let known = self.state.lock().expect("backup state").trash_cursor;
        let mut cursor = match known {
            Some(c) => c,
            None => read_trash_cursor(objects, &self.cfg.prefix).await.map_err(|e| e.to_string())?,
        };
        self.state.lock().expect("backup state").trash_cursor = Some(cursor);
        let locker = self.locker();
        let mut locked = Vec::new();
        if let Some(l) = &locker {
            locked = self.retry_locked_trash(objects, l).await?;
            if locked.len() + TRASH_PAGE > TRASH_LOCKED_MAX {
                // Full: the trash waits until some of them may go (the retry logs it).
                return Ok(());
            }
        }
        loop {
            let after = cursor;
            let page = self.meta.read(move |c| c.trash_after(after, TRASH_PAGE)).await.map_err(|e| e.to_string())?;
            let Some(&(last, _)) = page.last() else { return Ok(()) };
            let mut newly_locked = 0;
            for (_, hash) in &page {
                let key = pack::pack_key(&self.cfg.prefix, hash);
                let gone = match &locker {
                    // A versioned bucket: each version goes, or the pack waits for its retention.
                    Some(l) => l.delete_versions(&key).await.map_err(|e| with_hint(&e))? == lock::Deleted::Gone,
                    None => match objects.delete(&key).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => true,
                        Err(e) => return Err(explain("deleting", &key, &e)),
                    },
                };
                if !gone {
                    locked.push(*hash);
                    newly_locked += 1;
                }
            }
            if newly_locked > 0 {
                // Listed in the bucket before the cursor passes them, so none is forgotten.
                write_hash_list(objects, &self.cfg.prefix, TRASH_LOCKED, locked.iter()).await?;
                let mut st = self.state.lock().expect("backup state");
                st.trash_locked = Some(locked.clone());
                st.trash_locked_retry.get_or_insert_with(|| Instant::now() + TRASH_LOCKED_RETRY);
                drop(st);
                tracing::warn!(
                    packs = newly_locked,
                    waiting = locked.len(),
                    retry_s = TRASH_LOCKED_RETRY.as_secs(),
                    "packs of expired footage are still under Object Lock retention: the bucket refuses to delete \
                     them yet; they stay in the bucket trash and are tried again later"
                );
            }
            let page_len = page.len() - newly_locked;
            cursor = last;
            objects
                .put(&cursor_key, PutPayload::from(cursor.to_string().into_bytes()))
                .await
                .map_err(|e| explain("storing", &cursor_key, &e))?;
            {
                let mut st = self.state.lock().expect("backup state");
                st.expired_objects += page_len as u64;
                st.trash_cursor = Some(cursor);
            }
            tracing::info!(
                objects = page_len,
                through_entry = cursor,
                "packs of expired footage deleted from the bucket"
            );
        }
    }

    /// Object Lock: tries the trashed packs that were still under retention again when
    /// their retry is due; returns those still waiting.
    pub(super) async fn retry_locked_trash(
        &self,
        objects: &Arc<dyn ObjectStore>,
        locker: &lock::Locker,
    ) -> std::result::Result<Vec<Hash>, String> {
        let (known, retry) = {
            let st = self.state.lock().expect("backup state");
            (st.trash_locked.clone(), st.trash_locked_retry)
        };
        let waiting = match known {
            Some(w) => w,
            None => read_hash_list(objects, &self.cfg.prefix, TRASH_LOCKED).await?,
        };
        let due = retry.is_none_or(|t| Instant::now() >= t);
        if waiting.is_empty() || !due {
            self.state.lock().expect("backup state").trash_locked = Some(waiting.clone());
            return Ok(waiting);
        }
        let mut still = Vec::new();
        for hash in &waiting {
            let key = pack::pack_key(&self.cfg.prefix, hash);
            if locker.delete_versions(&key).await.map_err(|e| with_hint(&e))? == lock::Deleted::Locked {
                still.push(*hash);
            }
        }
        let deleted = waiting.len() - still.len();
        if deleted > 0 {
            write_hash_list(objects, &self.cfg.prefix, TRASH_LOCKED, still.iter()).await?;
            tracing::info!(packs = deleted, "packs whose Object Lock retention ended deleted from the bucket");
        }
        if !still.is_empty() {
            tracing::info!(
                packs = still.len(),
                retry_s = TRASH_LOCKED_RETRY.as_secs(),
                "packs of expired footage still under Object Lock retention; tried again later"
            );
        }
        let mut st = self.state.lock().expect("backup state");
        st.expired_objects += deleted as u64;
        st.trash_locked = Some(still.clone());
        st.trash_locked_retry = (!still.is_empty()).then(|| Instant::now() + TRASH_LOCKED_RETRY);
        Ok(still)
    }
}
