//! The daily seal, black-box: a node seals what it kept on its schedule, into the catalog
//! and the bucket; a seal file checks out offline under the hospital's key and fails when
//! altered or signed by another; an audit log cut after a seal is caught by
//! `custos audit verify --against-seal`.

mod common;

use common::{wait_for, Node, TestS3, S3_KEY};
use custos_evidence::seal::{SealFile, SealStatement};

fn statement(path: &std::path::Path) -> (SealFile, SealStatement) {
    let f: SealFile = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let s = serde_json::from_str(&f.statement).unwrap();
    (f, s)
}

fn out(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seals_chain_verify_offline_and_catch_a_cut_audit_log() {
    let s3 = TestS3::start("footage");
    let mut node = Node::init(&["lobby=test://ball".into()], 1_000);
    node.configure("seal_every_s = 2");
    node.append_config(&format!(
        "[backup]\nendpoint = \"{}\"\nbucket = \"footage\"\nprefix = \"site-a\"\nallow_http = true",
        s3.url
    ));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = node.start().await;
    let auditor_token = node.user_token("audit.office", "auditor", None, 0).await;
    let auditor = node.connect(Some(&auditor_token)).await.unwrap();
    let pubkey = admin.signing_key().await.unwrap().public_key;
    let sealed = wait_for(30, "three seals", || async {
        let v = auditor.list_seals().await.ok()?;
        (v.len() >= 3).then_some(v)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cli = |node: &Node, args: &[&str]| node.cli(&auditor_token, args);

    // Each seal names the one before it; the period ends where the next begins.
    let mut files = Vec::new();
    for s in &sealed[..3] {
        let p = dir.path().join(format!("seal-{}.json", s.seq));
        let o = cli(&node, &["seal", "show", &s.seq.to_string(), "-o", p.to_str().unwrap()]);
        assert!(o.status.success(), "{}", out(&o));
        files.push(statement(&p));
    }
    for w in files.windows(2) {
        assert_eq!(w[1].1.prev_seal, w[0].0.hash, "seal {} names seal {}", w[1].1.seq, w[0].1.seq);
        assert_eq!(w[1].1.from_ms, w[0].1.to_ms, "no time falls between two seals");
    }
    assert_eq!(files[0].1.prev_seal, "0".repeat(64));
    assert!(files.iter().any(|(_, s)| s.cameras.iter().any(|c| c.camera == "lobby" && c.segments > 0)));

    // Offline: valid under the hospital's key; the signer is not taken on trust.
    let p1 = dir.path().join("seal-1.json");
    let o = cli(&node, &["seal", "verify", p1.to_str().unwrap(), "--pubkey", &pubkey]);
    assert!(o.status.success() && out(&o).contains("SEAL VALID"), "{}", out(&o));
    let o = cli(&node, &["seal", "verify", p1.to_str().unwrap()]);
    assert!(!o.status.success() && out(&o).contains("SIGNER NOT CHECKED"), "{}", out(&o));
    assert!(cli(&node, &["seal", "verify", p1.to_str().unwrap(), "--integrity-only"]).status.success());
    // Altered: one number in the statement.
    let (mut f, s) = statement(&p1);
    f.statement = f.statement.replacen(&format!("\"seq\":{}", s.seq), &format!("\"seq\":{}", s.seq + 7), 1);
    let altered = dir.path().join("altered.json");
    std::fs::write(&altered, serde_json::to_string(&f).unwrap()).unwrap();
    let o = cli(&node, &["seal", "verify", altered.to_str().unwrap(), "--pubkey", &pubkey]);
    assert!(!o.status.success() && out(&o).contains("SEAL INVALID"), "{}", out(&o));
    // Re-signed by someone else's key: refused under the hospital's.
    let other = custos_evidence::export::SigningKey::from_pkcs8(
        &custos_evidence::export::SigningKey::generate_pkcs8().unwrap(),
    )
    .unwrap();
    let forged = SealFile::sign(&SealStatement { signing_key: other.public_hex(), ..s.clone() }, &other);
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, serde_json::to_string(&forged).unwrap()).unwrap();
    let o = cli(&node, &["seal", "verify", forged_path.to_str().unwrap(), "--pubkey", &pubkey]);
    assert!(!o.status.success(), "{}", out(&o));

    // The bucket holds the seals too.
    wait_for(30, "seals in the bucket", || async {
        (s3.files_under("footage", "site-a/seals").len() >= 3).then_some(())
    })
    .await;

    // The log as the seal saw it verifies against it.
    let newest = dir.path().join("newest.json");
    let o = cli(&node, &["seal", "show", "-o", newest.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    let (_, head) = statement(&newest);
    let o = cli(&node, &["audit", "verify", "--against-seal", newest.to_str().unwrap(), "--pubkey", &pubkey]);
    assert!(o.status.success(), "{}", out(&o));

    // Someone with the disks cuts the audit log back to before the seal's head and
    // re-points the head, so the shorter chain is consistent in itself.
    node.stop();
    node.configure("seal_every_s = 3600");
    let keep = head.audit_seq - 3;
    {
        use custos_node::audit::AuditRecord;
        use custos_node::meta::db::{self, CF_AUDIT, CF_SM};
        use custos_node::meta::types::{decode, encode};
        let db = db::open(&node.data().join("catalog")).unwrap();
        let audit = db.cf_handle(CF_AUDIT).unwrap();
        let last: Vec<u64> = db
            .iterator_cf(audit, rocksdb::IteratorMode::Start)
            .map(|kv| u64::from_be_bytes(kv.unwrap().0[..8].try_into().unwrap()))
            .filter(|seq| *seq > keep)
            .collect();
        for seq in last {
            db.delete_cf(audit, seq.to_be_bytes()).unwrap();
        }
        let rec: AuditRecord = decode(&db.get_cf(audit, keep.to_be_bytes()).unwrap().unwrap()).unwrap();
        db.put_cf(db.cf_handle(CF_SM).unwrap(), b"audit_head", encode(&(keep, rec.hash))).unwrap();
    }
    node.start().await;
    let o = cli(&node, &["audit", "verify"]);
    assert!(o.status.success(), "the cut chain is consistent in itself: {}", out(&o));
    let o = cli(&node, &["audit", "verify", "--against-seal", newest.to_str().unwrap(), "--pubkey", &pubkey]);
    assert!(!o.status.success(), "{}", out(&o));
    let said = out(&o);
    // New entries may have grown past the cut again: then the entry is there but differs.
    assert!(said.contains("CUT OR REWRITTEN") && said.contains(&format!("entry {}", head.audit_seq)), "{said}");
    node.stop();
}

/// Someone with the bucket credentials deletes the newest snapshots, so a restore would
/// bring back an older catalog: the seals in the bucket give it away, and the restore
/// refuses unless told `--accept-rollback`, saying what would be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_refuses_a_snapshot_older_than_the_newest_seal() {
    let s3 = TestS3::start("footage");
    let mut node = Node::init(&["lobby=test://ball".into()], 1_000);
    node.configure("seal_every_s = 2");
    node.append_config(&format!(
        "[backup]\nendpoint = \"{}\"\nbucket = \"footage\"\nprefix = \"site-a\"\nallow_http = true\nsnapshot_every_s = 1",
        s3.url
    ));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = node.start().await;
    let snapshots = || {
        let mut v = s3.files_under("footage", "site-a/snapshots");
        v.sort();
        v
    };
    wait_for(30, "a first snapshot", || async { (!snapshots().is_empty()).then_some(()) }).await;
    let first = snapshots()[0].clone();
    // Things happen after it, and two more seals record them.
    admin.add_camera("gate", "test://snow", "Gate").await.unwrap();
    let seals_then = s3.files_under("footage", "site-a/seals").len();
    wait_for(30, "two more seals in the bucket", || async {
        (s3.files_under("footage", "site-a/seals").len() >= seals_then + 2).then_some(())
    })
    .await;
    node.stop();
    // The thief deletes every snapshot but the first.
    for p in snapshots().into_iter().filter(|p| *p != first) {
        std::fs::remove_file(p).unwrap();
    }
    let identity = node.data().join("keys/RECOVERY-move-offline.age");
    let restore = |data: &std::path::Path, extra: &[&str]| {
        std::process::Command::new(common::bin("custos-node"))
            .args(["restore", "--from", "s3://footage/site-a", "--endpoint", &s3.url, "--allow-http"])
            .arg("--recovery-identity")
            .arg(&identity)
            .arg("--data")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{}", common::free_port()), "--campus", "east", "--json"])
            .args(["--metrics-listen", "off", "--web-listen", "off"])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", S3_KEY.0)
            .env("AWS_SECRET_ACCESS_KEY", S3_KEY.1)
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let o = restore(&dir.path().join("a"), &[]);
    assert!(!o.status.success(), "a rolled-back bucket must not restore silently: {}", out(&o));
    let said = out(&o);
    assert!(said.contains("REFUSED") && said.contains("newest seal") && said.contains("--accept-rollback"), "{said}");
    assert!(!dir.path().join("a").exists(), "a refused restore leaves no data directory");
    let o = restore(&dir.path().join("b"), &["--accept-rollback"]);
    assert!(o.status.success(), "{}", out(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["rollback_accepted"].as_str().unwrap().contains("loses entries"), "{r}");
}
