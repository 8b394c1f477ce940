//! Continuous backup to a real S3 server on loopback (`custos-test-s3`, the s3s-fs
//! crate): blobs arrive sealed and byte-identical, packed so there are fewer objects than
//! segments; progress is recorded only for what the store confirmed, an outage is
//! retried, bad credentials raise an alarm without touching recording, a destroyed
//! cluster comes back from the bucket, and expiry deletes whole packs.

mod common;

use common::{now_ms, wait_for, Node, TestS3, S3_KEY};

const PURPOSE: &str = "backup check: compare stored objects";

/// Packs wait at most 4 s for more footage (four 1 s segments), so tests see them soon.
fn backup_section(s3: &TestS3, bucket: &str) -> String {
    format!(
        "[backup]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nprefix = \"site-a\"\nallow_http = true\npack_max_wait_s = 4",
        s3.url
    )
}

const PACKS: &str = "site-a/packs";

/// Where the bucket holds `node`'s sealed blob of `s`, byte for byte.
fn in_bucket(s3: &TestS3, node: &Node, s: &custos_proto::v1::Segment) -> Option<(std::path::PathBuf, usize)> {
    let blob = node.blob(&s.content_hash).unwrap_or_else(|| panic!("{}@{} not on the node", s.camera, s.start_ms));
    assert_eq!(blake3::hash(&blob).as_bytes().as_slice(), s.blob_hash.as_slice());
    s3.find_bytes("footage", PACKS, &blob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_reach_the_bucket_sealed_and_outages_are_retried() {
    let mut s3 = TestS3::start("footage");
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    node.append_config(&backup_section(&s3, "footage"));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = node.start().await;
    let sec = node.user("guard", "security", None).await;
    let t0 = now_ms() - 60_000;

    let st = wait_for(60, "segments backed up", || async {
        let s = admin.status().await.ok()?;
        (s.backed_up_segments >= 4).then_some(s)
    })
    .await;
    assert!(st.backup_configured && st.backup_last_error.is_empty(), "{st:?}");
    // What the store holds is the sealed blobs, byte for byte, packed: fewer objects
    // (requests) than segments.
    let segs = sec.search("lobby", t0, now_ms(), PURPOSE).await.unwrap().0;
    let stored = segs.iter().filter(|s| in_bucket(&s3, &node, s).is_some()).count();
    assert!(stored as u64 >= st.backed_up_segments.min(segs.len() as u64), "{stored} of {}", st.backed_up_segments);
    let objects = s3.files_under("footage", PACKS).len() as u64;
    assert!(objects >= st.backup_objects && st.backup_objects >= 1, "{objects} files, {st:?}");
    assert!(st.backup_objects < st.backed_up_segments, "packing: {st:?}");

    // The store goes away: uploads fail and are retried, recording goes on, and nothing is
    // marked backed up that the store did not confirm.
    s3.kill();
    let down = wait_for(30, "the backup alarm", || async {
        let s = admin.status().await.ok()?;
        (!s.backup_last_error.is_empty() && s.alarms.iter().any(|a| a.contains("backup"))).then_some(s)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let later = admin.status().await.unwrap();
    assert!(later.segments > down.segments, "recording continues while backup fails");
    assert_eq!(later.backed_up_segments, down.backed_up_segments, "nothing is marked while the store is down");
    assert!(later.backup_pending > 0);

    // It comes back: the queue drains and every committed segment is in the bucket.
    s3.restart();
    wait_for(60, "the backlog uploaded", || async {
        let s = admin.status().await.ok()?;
        (s.backup_pending <= 2 && s.backup_last_error.is_empty() && s.backed_up_segments > later.backed_up_segments)
            .then_some(())
    })
    .await;
    let segs = sec.search("lobby", t0, later_end(&sec, t0).await, PURPOSE).await.unwrap().0;
    for s in &segs {
        assert!(in_bucket(&s3, &node, s).is_some(), "lobby@{} missing", s.start_ms);
    }
    node.stop();
}

/// End of the footage committed before the last few seconds (the newest segments may
/// still be queued).
async fn later_end(sec: &custos_client::Client, t0: i64) -> i64 {
    let segs = sec.search("lobby", t0, now_ms(), PURPOSE).await.unwrap().0;
    segs.iter().rev().nth(3).map(|s| s.end_ms).unwrap_or(t0 + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_raise_an_alarm_and_recording_is_unaffected() {
    let s3 = TestS3::start("footage");
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    node.append_config(&backup_section(&s3, "footage"));
    node.env = vec![
        ("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "wrong-secret-4711".into()),
    ];
    let admin = node.start().await;
    let st = wait_for(30, "the credentials alarm", || async {
        let s = admin.status().await.ok()?;
        (!s.backup_last_error.is_empty()).then_some(s)
    })
    .await;
    assert!(st.alarms.iter().any(|a| a.contains("backup is failing")), "{:?}", st.alarms);
    println!("backup error shown to the operator: {}", st.backup_last_error);
    wait_for(30, "recording unaffected", || async {
        let s = admin.status().await.ok()?;
        (s.segments >= 3 && s.backed_up_segments == 0).then_some(())
    })
    .await;
    assert!(std::fs::read_dir(s3.root.path().join("footage")).unwrap().next().is_none(), "nothing was stored");
    let log = std::fs::read_to_string(node.dir.path().join("node-1.log")).unwrap();
    assert!(!log.contains("wrong-secret-4711"), "credentials never reach the log");
    assert!(!st.backup_last_error.contains("wrong-secret-4711"));
}

/// Status of whichever node leads (the backup worker's view lives there).
async fn leader_status(nodes: &[&Node]) -> Option<custos_proto::v1::StatusResponse> {
    for n in nodes {
        if let Ok(c) = n.connect(Some(&n.token)).await {
            if let Ok(s) = c.status().await {
                if s.raft_role == "leader" {
                    return Some(s);
                }
            }
        }
    }
    None
}

/// Runs `custos-node restore` and returns its exit status and output.
fn restore_cmd(s3: &TestS3, identity: &std::path::Path, data: &std::path::Path, listen: &str) -> std::process::Output {
    restore_with(s3, identity, data, listen, &[])
}

/// `custos-node restore` with `extra` flags.
fn restore_with(
    s3: &TestS3,
    identity: &std::path::Path,
    data: &std::path::Path,
    listen: &str,
    extra: &[&str],
) -> std::process::Output {
    std::process::Command::new(common::bin("custos-node"))
        .args(["restore", "--from", "s3://footage/site-a", "--endpoint", &s3.url, "--allow-http"])
        .arg("--recovery-identity")
        .arg(identity)
        .arg("--data")
        .arg(data)
        .args(["--listen", listen, "--campus", "east", "--json"])
        .args(extra)
        .args(["--metrics-listen", &format!("127.0.0.1:{}", common::free_port()), "--web-listen", "off"])
        .env("AWS_ACCESS_KEY_ID", S3_KEY.0)
        .env("AWS_SECRET_ACCESS_KEY", S3_KEY.1)
        .output()
        .expect("custos-node restore")
}

/// The whole disaster: a two-campus cluster records and backs up, every node's data is
/// destroyed, and `custos-node restore` rebuilds the cluster from the bucket and the
/// offline recovery identity alone. Every backed-up segment comes back verified (one
/// object damaged in the bucket is named, not restored), the audit chain is intact and
/// extended by the restore, the old admin token and CA still work, and a node joining the
/// restored one gets a copy of every restored segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_cluster_is_rebuilt_from_its_bucket_and_recovery_key() {
    let s3 = TestS3::start("footage");
    let mut cam = common::TestCamera::start_with(0, &["--keyint", "25", "--width", "320", "--height", "180"]);
    let cams = [format!("door={}", cam.url), format!("ward={}", cam.url)];
    let creds = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let section = format!("{}\nsnapshot_every_s = 1", backup_section(&s3, "footage"));

    let mut n1 = Node::init_with(&cams, 1_000, &["--campus", "east"]);
    n1.append_config(&section);
    n1.env = creds.clone();
    // IT moves the recovery identity off the node, as init tells them to.
    let vault = tempfile::tempdir().unwrap();
    let recovery = vault.path().join("recovery.age");
    let on_node = n1.data().join("keys/RECOVERY-move-offline.age");
    std::fs::copy(&on_node, &recovery).unwrap();
    std::fs::remove_file(&on_node).unwrap();
    n1.start().await;
    let mut n2 = Node::join(&n1, "west").await;
    n2.append_config(&section);
    n2.env = creds;
    n2.start().await;

    let sec = n1.user("guard", "security", None).await;
    let t0 = now_ms() - 60_000;
    wait_for(90, "footage backed up", || async {
        let s = leader_status(&[&n1, &n2]).await?;
        (s.backed_up_segments >= 8).then_some(())
    })
    .await;
    // Recording stops (the camera dies); the queue drains and a snapshot follows.
    cam.kill();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // Viewing footage and reading the audit log are audited; the snapshot must hold both.
    let mut before = Vec::new();
    for c in ["door", "ward"] {
        before.extend(sec.search(c, t0, now_ms(), PURPOSE).await.unwrap().0);
    }
    assert!(before.len() >= 8, "{} segments", before.len());
    let audit_before = sec_audit(&n1).await;
    let drained = wait_for(60, "backup queue drained", || async {
        let s = leader_status(&[&n1, &n2]).await?;
        if s.backup_pending > 0 || !s.backup_last_error.is_empty() {
            eprintln!("backup: {} waiting, error {:?}", s.backup_pending, s.backup_last_error);
        }
        (s.backup_pending == 0 && s.backup_last_error.is_empty()).then_some(s.last_applied_index)
    })
    .await;
    let snap = wait_for(30, "a snapshot of the drained catalog", || async {
        let s = leader_status(&[&n1, &n2]).await?;
        let index: u64 = s.backup_last_snapshot.rsplit('-').next()?.strip_suffix(".age")?.parse().ok()?;
        (index >= drained).then_some(s)
    })
    .await;
    assert!(snap.backup_last_snapshot.starts_with("site-a/snapshots/"), "{}", snap.backup_last_snapshot);
    assert!(s3.object("footage", &snap.backup_last_snapshot).is_some(), "the snapshot is in the bucket");

    // Packing: fewer objects than segments.
    assert!(snap.backup_objects >= 1 && snap.backup_objects < before.len() as u64, "{snap:?}");
    // One segment is damaged inside its pack; verify and restore must name it, and only it.
    let damaged = before[1].clone();
    let holder = if n1.holds_blob(&damaged.content_hash) { &n1 } else { &n2 };
    let blob = holder.blob(&damaged.content_hash).unwrap();
    let (obj, at) = in_bucket(&s3, holder, &damaged).expect("the damaged segment's pack");
    let mut bytes = std::fs::read(&obj).unwrap();
    bytes[at + blob.len() / 2] ^= 0x40;
    std::fs::write(&obj, bytes).unwrap();

    // `custos backup verify` reads the bucket back and finds exactly that damage.
    let v = n1.connect(Some(&n1.token)).await.unwrap().verify_backup(0).await.unwrap();
    assert!(v.snapshot_problem.is_empty(), "{v:?}");
    assert_eq!((v.backed_up, v.checked, v.ok), (before.len() as u64, before.len() as u64, before.len() as u64 - 1));
    assert!(v.missing.is_empty() && v.corrupt.len() == 1, "{v:?}");
    assert!(v.corrupt[0].starts_with(&format!("{}@{}", damaged.camera, damaged.start_ms)), "{v:?}");

    // The disaster: every node and all its data are gone.
    let (token, ca_pem) = (n1.token.clone(), std::fs::read(&n1.ca_file).unwrap());
    let approver = n1.approver.clone();
    for n in [&mut n1, &mut n2] {
        n.kill9();
        std::fs::remove_dir_all(n.data()).unwrap();
    }

    // A key that is not the cluster's recovery identity opens nothing.
    let stranger = Node::init(&[], 1_000);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let out =
        restore_cmd(&s3, &stranger.data().join("keys/RECOVERY-move-offline.age"), &dir.path().join("data"), &listen);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recovery identity"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let out = restore_cmd(&s3, &recovery, &dir.path().join("data"), &listen);
    assert!(out.status.success(), "restore failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("restore report: {r}");
    let n = before.len() as u64;
    assert_eq!(r["segments_in_catalog"], n);
    assert_eq!(r["segments_restored"], n - 1);
    assert_eq!(r["segments_missing"].as_array().unwrap().len(), 0);
    let corrupt = r["segments_corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{corrupt:?}");
    assert!(corrupt[0].as_str().unwrap().starts_with(&format!("{}@{}", damaged.camera, damaged.start_ms)));
    assert!(r["audit_entries_verified"].as_u64().unwrap() >= audit_before);
    assert_eq!(r["nodes_retired"], 2);

    // The restored node: the cluster's CA and the old admin token still work.
    let ca_file = std::path::PathBuf::from(r["ca_file"].as_str().unwrap());
    assert_eq!(std::fs::read(&ca_file).unwrap(), ca_pem, "the cluster's CA came back");
    let metrics = r["metrics_listen"].as_str().unwrap().to_string();
    let mut restored = Node::adopt(dir, listen, token, ca_file, metrics);
    // The founding approver's token was restored with the catalog too.
    restored.approver = approver;
    restored.env =
        vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = restored.start().await;
    let sec = restored.user("guard2", "security", None).await;
    let (mut after, mut lost) = (Vec::new(), Vec::new());
    for c in ["door", "ward"] {
        let r = sec.search_full(c, t0, now_ms(), PURPOSE).await.unwrap();
        after.extend(r.segments);
        lost.extend(r.lost);
    }
    let key =
        |s: &custos_proto::v1::Segment| (s.camera.clone(), s.start_ms, s.content_hash.clone(), s.blob_hash.clone());
    let (mut b, mut a): (Vec<_>, Vec<_>) = (
        before.iter().filter(|s| s.content_hash != damaged.content_hash).map(key).collect(),
        after.iter().map(key).collect(),
    );
    b.sort();
    a.sort();
    assert_eq!(a, b, "the catalog came back as it was");
    // The damaged segment is a gap with its reason, not a segment that fails to play.
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!((lost[0].camera.as_str(), lost[0].start_ms), (damaged.camera.as_str(), damaged.start_ms));
    assert!(lost[0].reason.contains("failed verification"), "{lost:?}");
    // A range around it is served, naming it; the compliance report counts it.
    let (from, to) = (damaged.start_ms - 3_000, damaged.end_ms + 3_000);
    let (mut buf, mut named) = (Vec::new(), Vec::new());
    let served = sec
        .fetch(&damaged.camera, from, to, PURPOSE, &mut buf, |ev| {
            if let custos_client::FetchEvent::Lost(l) = ev {
                named.push(l.start_ms);
            }
        })
        .await
        .unwrap();
    assert!(!served.is_empty() && served.iter().all(|s| s.start_ms != damaged.start_ms), "{served:?}");
    assert_eq!(named, [damaged.start_ms]);
    let report = restored.user("auditor3", "auditor", None).await.compliance_report(1).await.unwrap();
    let row = report.cameras.iter().find(|c| c.camera == damaged.camera).unwrap();
    assert_eq!(row.lost_segments, 1, "{row:?}");
    for s in &before {
        let mut buf = Vec::new();
        let got = sec.fetch(&s.camera, s.start_ms, s.end_ms, PURPOSE, &mut buf, |_| {}).await;
        if s.content_hash == damaged.content_hash {
            let e = got.expect_err("the damaged segment is not served");
            assert_eq!(e.code(), Some(tonic::Code::DataLoss), "{e}");
            assert!(e.to_string().contains("lost for good"), "{e}");
        } else {
            got.unwrap_or_else(|e| panic!("{}@{}: {e}", s.camera, s.start_ms));
            assert_eq!(
                blake3::hash(&buf).as_bytes().as_slice(),
                s.content_hash.as_slice(),
                "{}@{}",
                s.camera,
                s.start_ms
            );
        }
    }
    // The audit chain is whole, and says the cluster was restored.
    let auditor = restored.user("auditor2", "auditor", None).await;
    let entries = auditor.audit_log(Default::default()).await.unwrap();
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.hash.as_slice().try_into().unwrap()).collect();
    let (n_ok, _) = custos_evidence::verify_chain(entries.iter().zip(&hashes).map(|(e, h)| (e.body.as_slice(), h)))
        .expect("the restored audit chain verifies");
    assert!(n_ok > audit_before);
    assert!(entries.iter().any(|e| String::from_utf8_lossy(&e.body).contains("cluster-restore")));
    let nodes = admin.list_nodes().await.unwrap();
    assert_eq!(nodes.leader, r["node_id"].as_u64().unwrap(), "{nodes:?}");

    // And then a cluster: a new node joins the restored one, and repair brings every
    // restored segment back up to two copies on two campuses.
    let mut west = Node::join(&restored, "west").await;
    west.start().await;
    let restored_n = before.len() - 1;
    wait_for(60, "restored footage replicated to the new node", || async {
        let mut n = 0;
        for c in ["door", "ward"] {
            n += sec.search(c, t0, now_ms(), PURPOSE).await.ok()?.0.iter().filter(|s| s.replicas.len() >= 2).count();
        }
        (n == restored_n).then_some(())
    })
    .await;
    for s in before.iter().filter(|s| s.content_hash != damaged.content_hash) {
        assert!(west.holds_blob(&s.content_hash), "{}@{} on the new node", s.camera, s.start_ms);
    }
    west.stop();
    restored.stop();
}

/// Issue 18, item 5: age does not say who encrypted, so anyone who knows the cluster's
/// (public) recipients can plant a snapshot that the recovery identity opens. Restore
/// refuses one not signed by the key it carries, with `--pubkey` one not signed by the
/// hospital's published key, and restores a real one with `--pubkey`, reporting its
/// chain: the previous snapshot it names is in the bucket, and an older one restored is
/// named as the previous of a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_sealed_by_someone_who_knows_only_the_recipients_is_refused_by_restore() {
    use custos_node::backup::snapshot::{snapshot_key, ClusterKeys, SnapshotFile, NOT_SIGNED, SNAPSHOT_FORMAT};
    let s3 = TestS3::start("footage");
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    node.append_config(&format!("{}\nsnapshot_every_s = 1", backup_section(&s3, "footage")));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = node.start().await;
    // What the hospital publishes.
    let published = admin.signing_key().await.unwrap().public_key;
    let snapshots = || -> Vec<String> {
        let mut v: Vec<String> = s3
            .files_under("footage", "site-a/snapshots")
            .iter()
            .filter_map(|f| {
                f.file_name()?.to_str().filter(|n| n.ends_with(".age")).map(|n| format!("site-a/snapshots/{n}"))
            })
            .collect();
        v.sort();
        v
    };
    wait_for(60, "three snapshots in the bucket", || async { (snapshots().len() >= 3).then_some(()) }).await;
    node.kill9();
    let real = snapshots();
    let identity = node.data().join("keys/RECOVERY-move-offline.age");

    // The forger knows the recipients (they are in every node's config) and nothing else.
    let config = std::fs::read_to_string(node.data().join("custos.toml")).unwrap();
    let recipients: Vec<String> = config.split('"').filter(|s| s.starts_with("age1")).map(String::from).collect();
    assert!(recipients.len() >= 2, "{config}");
    let own = custos_node::segment::seal::generate_identity();
    let forger_keys = custos_node::segment::Keys::new(&recipients, &own.secret).unwrap();
    let forger_der = custos_evidence::export::SigningKey::generate_pkcs8().unwrap();
    let forger = custos_evidence::export::SigningKey::from_pkcs8(&forger_der).unwrap();
    let state = b"a catalog of the forger's choosing".to_vec();
    let mut forged = SnapshotFile {
        format: SNAPSHOT_FORMAT.into(),
        created_ms: now_ms() + 60_000,
        made_by: 1,
        applied_index: 999_999,
        previous_blake3: String::new(),
        keys: ClusterKeys { archive_identity: own.secret.clone(), signing_key_pkcs8: forger_der, ..Default::default() },
        state_blake3: *blake3::hash(&state).as_bytes(),
        state,
        signature: String::new(),
    };
    let cfg = custos_node::config::BackupConfig {
        endpoint: Some(s3.url.clone()),
        bucket: "footage".into(),
        prefix: "site-a".into(),
        allow_http: true,
        credentials_file: Some(write_credentials()),
        ..Default::default()
    };
    let bucket = custos_node::backup::open_store(&cfg).unwrap();
    let plant = |file: &SnapshotFile| {
        let (bucket, sealed) = (bucket.clone(), file.seal(&forger_keys).unwrap());
        let key = snapshot_key("site-a", file.created_ms, file.applied_index);
        async move {
            use object_store::ObjectStoreExt;
            bucket.put(&key, sealed.into()).await.unwrap();
        }
    };
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let refused = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let out = restore_with(&s3, &identity, &dir.path().join("data"), &listen, extra);
        assert!(!out.status.success(), "a planted snapshot was restored: {}", String::from_utf8_lossy(&out.stdout));
        assert!(!dir.path().join("data").exists(), "nothing is written");
        String::from_utf8_lossy(&out.stderr).to_string()
    };

    // Unsigned: refused.
    plant(&forged).await;
    let err = refused(&[]);
    assert!(err.contains(NOT_SIGNED), "{err}");
    // Signed by a key other than the one it carries (the cluster's cannot be carried:
    // the forger does not have it): refused.
    let other = custos_evidence::export::SigningKey::from_pkcs8(
        &custos_evidence::export::SigningKey::generate_pkcs8().unwrap(),
    )
    .unwrap();
    forged.sign(&other);
    plant(&forged).await;
    let err = refused(&[]);
    assert!(err.contains(NOT_SIGNED), "{err}");
    // Signed by the key it carries, the forger's own: only the published key tells.
    forged.sign(&forger);
    plant(&forged).await;
    let err = refused(&["--pubkey", &published]);
    assert!(err.contains(NOT_SIGNED) && err.contains("--pubkey"), "{err}");

    // The real newest snapshot, pinned to the published key.
    let dir = tempfile::tempdir().unwrap();
    let newest = real.last().unwrap();
    let out = restore_with(
        &s3,
        &identity,
        &dir.path().join("data"),
        &listen,
        &["--pubkey", &published, "--snapshot", newest],
    );
    assert!(out.status.success(), "restore failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("restore report: {r}");
    assert_eq!(r["snapshot_key"], newest.as_str());
    assert_eq!(r["snapshot_signing_key"], published.as_str());
    assert_eq!(r["signer_checked_against"], "published-key");
    assert_eq!(r["previous_link"], "found", "{r}");
    assert_eq!(r["previous_snapshot_key"], real[real.len() - 2].as_str(), "{r}");
    assert_eq!(r["newer_snapshots"].as_array().unwrap().len(), 0, "the planted one is not the cluster's: {r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("signed by the published key"), "{stderr}");

    // An older one: the newer snapshot that names it is reported; without --pubkey the
    // report and the progress lines say the signer was checked only against its own key.
    let dir = tempfile::tempdir().unwrap();
    let older = &real[real.len() - 2];
    let out = restore_with(&s3, &identity, &dir.path().join("data"), &listen, &["--snapshot", older]);
    assert!(out.status.success(), "restore failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["signer_checked_against"], "snapshot-key-only");
    assert_eq!(r["newer_snapshots"], serde_json::json!([newest]), "{r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checked only against the key inside the snapshot"), "{stderr}");
}

/// An AWS-style credentials file for the test S3 server.
fn write_credentials() -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let p = dir.join("credentials");
    std::fs::write(&p, format!("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n", S3_KEY.0, S3_KEY.1))
        .unwrap();
    p
}

/// Entries in the audit log, read by a new auditor.
async fn sec_audit(n: &Node) -> u64 {
    let auditor = n.user("auditor1", "auditor", None).await;
    auditor.audit_log(Default::default()).await.unwrap().len() as u64
}

/// Retention reaches the bucket: on a simulated clock 61 days on, expired footage's
/// objects are deleted from the bucket after the cluster deletes it, and held footage's
/// objects stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_footage_leaves_the_bucket_and_held_footage_stays() {
    const DAY: i64 = 86_400_000;
    let s3 = TestS3::start("footage");
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset-ms");
    std::fs::write(&clock, "0").unwrap();
    let mut node = Node::init(&["lobby=test://ball".to_string(), "gate=test://snow".to_string()], 1_000);
    node.configure("expiry_every_s = 1");
    node.append_config(&backup_section(&s3, "footage"));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = node.start_sim(&clock).await;
    let sec = node.user("guard", "security", None).await;
    node.approved(admin.set_policy(Some("lobby"), 30, 60).await).await.unwrap();
    let t0 = now_ms() - 10_000;
    sec.place_hold("case-gate", &["gate".to_string()], t0, None, PURPOSE).await.unwrap();

    let in_bucket =
        |segs: &[custos_proto::v1::Segment]| segs.iter().filter(|s| in_bucket(&s3, &node, s).is_some()).count();
    let (lobby, gate) = wait_for(60, "footage of both cameras in the bucket", || async {
        let l = sec.search("lobby", t0, now_ms(), PURPOSE).await.ok()?.0;
        let g = sec.search("gate", t0, now_ms(), PURPOSE).await.ok()?.0;
        let (l, g): (Vec<_>, Vec<_>) = (l.into_iter().take(3).collect(), g.into_iter().take(3).collect());
        (l.len() == 3 && g.len() == 3 && in_bucket(&l) == 3 && in_bucket(&g) == 3).then_some((l, g))
    })
    .await;
    // The node deletes expired blobs too: keep copies to look for in the bucket.
    let blobs = |segs: &[custos_proto::v1::Segment]| -> Vec<Vec<u8>> {
        segs.iter().map(|s| node.blob(&s.content_hash).unwrap()).collect()
    };
    let (lobby, gate) = (blobs(&lobby), blobs(&gate));
    let stored = |blobs: &[Vec<u8>]| blobs.iter().filter(|b| s3.find_bytes("footage", PACKS, b).is_some()).count();

    std::fs::write(&clock, (61 * DAY).to_string()).unwrap();
    // A jump while running: the bucket's Date disagrees with it, so an approver confirms.
    node.confirm_clock_jumps(&[node.node_id()]).await;
    wait_for(60, "expired packs deleted from the bucket", || async { (stored(&lobby) == 0).then_some(()) }).await;
    assert_eq!(stored(&gate), 3, "held footage stays in the bucket");
    let st = admin.status().await.unwrap();
    assert!(st.backup_expired_objects >= 1, "{st:?}");
    node.stop();
}
