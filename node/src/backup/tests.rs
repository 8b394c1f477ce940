//! Unit tests of the backup worker's pure parts.

use super::*;

fn generic(text: &str) -> object_store::Error {
    object_store::Error::Generic { store: "S3", source: text.to_string().into() }
}

#[test]
fn store_errors_come_with_what_to_check() {
    let k = ObjectPath::from("p/snapshots");
    let e = explain("listing", &k, &generic("404 Not Found: <Code>NoSuchBucket</Code>"));
    assert!(e.starts_with("the bucket does not exist") && e.contains("listing p/snapshots"), "{e}");
    let e = explain("storing", &k, &generic("403 Forbidden: <Code>SignatureDoesNotMatch</Code>"));
    assert!(e.contains("refused the credentials"), "{e}");
    let e = explain("reading", &k, &generic("HTTP error: error sending request"));
    assert!(e.contains("does not answer"), "{e}");
    assert!(explain("reading", &k, &generic("something else")).starts_with("reading p/snapshots"));
}

#[test]
fn packs_are_locked_until_their_newest_end_plus_min_days_and_held_while_a_hold_covers_them() {
    let seg = |start_ms: i64| SegmentRecord {
        camera: "icu".into(),
        start_ms,
        end_ms: start_ms + 4_000,
        bytes: 1,
        blob_bytes: 1,
        content_hash: [1; 32],
        blob_hash: [2; 32],
        codec: crate::meta::Codec::H264,
        replicas: vec![1],
    };
    let members = [seg(8_000), seg(0), seg(4_000)];
    let policy = Policy::new(45, 90).unwrap();
    let (until, held) = pack_lock(&members, policy, &[], 20_000);
    assert_eq!(until, Some(12_000 + 45 * DAY_MS), "the newest member's end, not the first's");
    assert!(!held);
    let hold = Hold {
        id: "H-000001".into(),
        case_id: "c".into(),
        cameras: vec!["icu".into()],
        from_ms: 11_000,
        to_ms: None,
        reason: String::new(),
        placed_by: "g".into(),
        placed_ms: 0,
        release_approvals: vec![],
        released_ms: None,
    };
    assert!(pack_lock(&members, policy, std::slice::from_ref(&hold), 20_000).1, "one covered member holds the pack");
    let other = Hold { cameras: vec!["lobby".into()], ..hold };
    assert!(!pack_lock(&members, policy, &[other], 20_000).1);
    // Footage already past its floor gets no retention date (S3 refuses past dates).
    assert_eq!(pack_lock(&members, policy, &[], 12_000 + 45 * DAY_MS).0, None);
}

#[test]
fn credentials_files_are_read_by_profile() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("credentials");
    std::fs::write(
        &p,
        "# s3\n[default]\naws_access_key_id = A\naws_secret_access_key = B\n[profile backup]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=T\n",
    )
    .unwrap();
    assert_eq!(read_credentials_file(&p, "default").unwrap(), ("A".into(), "B".into(), None));
    assert_eq!(read_credentials_file(&p, "backup").unwrap(), ("C".into(), "D".into(), Some("T".into())));
    let e = read_credentials_file(&p, "other").unwrap_err().to_string();
    assert!(e.contains("[other]"), "{e}");
}
