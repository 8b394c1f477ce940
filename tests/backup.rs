//! Continuous backup to a real S3 server on loopback (`custos-test-s3`, the s3s-fs
//! crate): blobs arrive sealed and byte-identical, progress is recorded only for what the
//! store confirmed, an outage is retried, and bad credentials raise an alarm without
//! touching recording.

mod common;

use common::{now_ms, wait_for, Node, TestS3, S3_KEY};

const PURPOSE: &str = "backup check: compare stored objects";

fn backup_section(s3: &TestS3, bucket: &str) -> String {
    format!("[backup]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nprefix = \"site-a\"\nallow_http = true", s3.url)
}

fn object_key(content_hash: &[u8]) -> String {
    let h = hex::encode(content_hash);
    format!("site-a/blobs/{}/{h}", &h[..2])
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
    // What the store holds is the sealed blob, byte for byte.
    let segs = sec.search("lobby", t0, now_ms(), PURPOSE).await.unwrap().0;
    let stored: Vec<_> =
        segs.iter().filter_map(|s| s3.object("footage", &object_key(&s.content_hash)).map(|o| (s, o))).collect();
    assert!(stored.len() as u64 >= st.backed_up_segments.min(segs.len() as u64));
    for (s, obj) in &stored {
        assert_eq!(blake3::hash(obj).as_bytes().as_slice(), s.blob_hash.as_slice(), "object of lobby@{}", s.start_ms);
        assert!(node.holds_blob(&s.content_hash));
    }

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
        let obj = s3
            .object("footage", &object_key(&s.content_hash))
            .unwrap_or_else(|| panic!("lobby@{} missing", s.start_ms));
        assert_eq!(blake3::hash(&obj).as_bytes().as_slice(), s.blob_hash.as_slice());
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
