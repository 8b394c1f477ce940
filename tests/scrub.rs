//! The scrubber on real nodes: a flipped bit and a deleted blob are found, repaired from
//! the other replica or from the backup bucket, quarantined, audited and alarmed;
//! damage with no good copy anywhere stays reported until it can be repaired.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{now_ms, wait_for, Node, TestS3, S3_KEY};
use custos_client::AuditLogRequest;

const PURPOSE: &str = "scrub check: compare stored blobs";

/// Flips one bit in the middle of a node's blob, as bit rot would.
fn flip_bit(node: &Node, content_hash: &[u8]) {
    let p = node.blob_path(content_hash);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x08;
    std::fs::write(&p, b).unwrap();
}

fn verifies(node: &Node, s: &custos_proto::v1::Segment) -> bool {
    node.blob(&s.content_hash).is_some_and(|b| blake3::hash(&b).as_bytes().as_slice() == s.blob_hash.as_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bit_rot_and_lost_blobs_are_repaired_from_the_other_replica() {
    let mut n1 = Node::init_with(&["lobby=test://ball".to_string()], 1_000, &["--campus", "east"]);
    n1.fast_scrub();
    n1.start().await;
    let mut n2 = Node::join(&n1, "west").await;
    n2.fast_scrub();
    n2.start().await;
    let sec = n1.user("sam", "security", None).await;
    let t0 = now_ms() - 60_000;
    let segs = wait_for(60, "footage on both nodes", || async {
        let segs = sec.search("lobby", t0, now_ms(), PURPOSE).await.ok()?.0;
        let both = segs.iter().filter(|s| s.replicas.len() == 2 && verifies(&n1, s) && verifies(&n2, s)).count();
        (both >= 4).then_some(segs)
    })
    .await;
    let both: Vec<_> = segs.iter().filter(|s| s.replicas.len() == 2).cloned().collect();
    let (rotted, lost, doomed) = (&both[0], &both[1], &both[2]);

    flip_bit(&n1, &rotted.content_hash);
    std::fs::remove_file(n2.blob_path(&lost.content_hash)).unwrap();
    // The same segment damaged on both nodes: no good copy anywhere.
    flip_bit(&n1, &doomed.content_hash);
    flip_bit(&n2, &doomed.content_hash);

    let a1 = n1.connect(Some(&n1.token)).await.unwrap();
    let a2 = n2.connect(Some(&n2.token)).await.unwrap();
    let st1 = wait_for(60, "node 1 repaired the flipped bit", || async {
        let s = a1.status().await.ok()?;
        (s.scrub_repaired >= 1 && s.scrub_unrepaired.len() == 1).then_some(s)
    })
    .await;
    let st2 = wait_for(60, "node 2 replaced the lost blob", || async {
        let s = a2.status().await.ok()?;
        (s.scrub_repaired >= 1 && s.scrub_missing >= 1 && s.scrub_unrepaired.len() == 1).then_some(s)
    })
    .await;
    assert!(st1.scrub_corrupt >= 2, "{st1:?}");
    assert!(verifies(&n1, rotted), "the rotted blob was replaced by a verified copy");
    assert!(verifies(&n2, lost), "the lost blob is back");
    let doomed_name = format!("lobby@{}", doomed.start_ms);
    assert!(st1.scrub_unrepaired[0].starts_with(&doomed_name), "{:?}", st1.scrub_unrepaired);
    assert!(st2.scrub_unrepaired[0].contains("no verified copy"), "{:?}", st2.scrub_unrepaired);

    // The bad bytes are kept for investigation, outside the store.
    let quarantine: Vec<_> = std::fs::read_dir(n1.data().join("blobs/quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(quarantine.iter().any(|f| f.starts_with(&hex::encode(&rotted.content_hash))), "{quarantine:?}");

    // Alarms: a recent finding on each node, and the damage nobody can repair.
    let alarms = wait_for(30, "scrub-failure alarms for both nodes", || async {
        let list = a1.list_alarms(false).await.ok()?;
        let scrub: Vec<_> = list.into_iter().filter(|a| a.kind == "scrub-failure").collect();
        (scrub.len() == 2).then_some(scrub)
    })
    .await;
    assert!(alarms.iter().all(|a| a.detail.contains("could not repair")), "{alarms:?}");
    let out = n1.cli(&n1.token, &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("NOT REPAIRED: {doomed_name}")));

    // Every finding is in the audit log.
    let auditor = n1.user("ada", "auditor", None).await;
    let log = auditor.audit_log(AuditLogRequest::default()).await.unwrap();
    let bodies: Vec<String> = log.iter().map(|e| String::from_utf8_lossy(&e.body).into_owned()).collect();
    let scrub: Vec<&String> = bodies.iter().filter(|b| b.contains("\"scrub-repair\"")).collect();
    assert!(scrub.iter().any(|b| b.contains("\"ok\"") && b.contains("is corrupt") && b.contains("another replica")));
    assert!(scrub.iter().any(|b| b.contains("\"ok\"") && b.contains("is missing")));
    assert!(scrub.iter().any(|b| b.contains("\"failed\"") && b.contains(&doomed_name)));
    // And in the metrics.
    let m = std::process::Command::new("curl").arg("-s").arg(format!("http://{}/metrics", n1.metrics)).output();
    if let Ok(m) = m {
        let text = String::from_utf8_lossy(&m.stdout);
        assert!(text.contains("custos_scrub_unrepaired 1"), "{text}");
    }
    n2.stop();
    n1.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_copy_is_repaired_from_the_backup_bucket() {
    let s3 = TestS3::start("footage");
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    node.fast_scrub();
    node.append_config(&format!(
        "[backup]\nendpoint = \"{}\"\nbucket = \"footage\"\nprefix = \"site-a\"\nallow_http = true\npack_max_wait_s = 2",
        s3.url
    ));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = node.start().await;
    let sec = node.user("sam", "security", None).await;
    let t0 = now_ms() - 60_000;
    wait_for(60, "footage backed up", || async { (admin.status().await.ok()?.backed_up_segments >= 3).then_some(()) })
        .await;
    let first = sec.search("lobby", t0, now_ms(), PURPOSE).await.unwrap().0[0].clone();
    flip_bit(&node, &first.content_hash);

    wait_for(60, "the blob repaired from the bucket", || async {
        let s = admin.status().await.ok()?;
        (s.scrub_repaired >= 1).then_some(())
    })
    .await;
    assert!(verifies(&node, &first));
    let mut out = Vec::new();
    sec.fetch("lobby", first.start_ms, first.end_ms, PURPOSE, &mut out, |_| {}).await.unwrap();
    assert_eq!(blake3::hash(&out).as_bytes().as_slice(), first.content_hash.as_slice());
    let auditor = node.user("ada", "auditor", None).await;
    let log = auditor.audit_log(AuditLogRequest::default()).await.unwrap();
    assert!(log.iter().any(|e| {
        let b = String::from_utf8_lossy(&e.body);
        b.contains("\"scrub-repair\"") && b.contains("the backup bucket")
    }));
    node.stop();
}
