//! S3 Object Lock against a real S3 server that implements it (moto in server mode on
//! loopback; `custos-test-s3` has no Object Lock). A bucket created with Object Lock makes
//! the node (`object_lock = "auto"`) write packs in COMPLIANCE mode until their newest
//! footage's end + the camera's `min_days`, snapshots and seals for the 30-day floor, and
//! held footage with a legal hold that only the hold's two-person release takes off; the
//! node's own credentials cannot delete any of it, and expired packs still under
//! retention wait in the bucket trash without an alarm.
//!
//! What moto enforces (checked here): deleting a version under COMPLIANCE retention or a
//! legal hold is refused with AccessDenied. What it does not: it lets PutObjectRetention
//! turn COMPLIANCE into GOVERNANCE or shorten it, which real S3 refuses; no test relies
//! on that either way.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{now_ms, wait_for, Node, TestMoto, S3_KEY};

const PURPOSE: &str = "object lock check: compare stored objects";
const DAY: i64 = 86_400_000;

fn backup_section(moto: &TestMoto) -> String {
    format!(
        "[backup]\nendpoint = \"{}\"\nbucket = \"footage\"\nprefix = \"site-a\"\nallow_http = true\npack_max_wait_s = 4\nsnapshot_every_s = 2",
        moto.url
    )
}

fn locked_bucket(moto: &TestMoto) {
    moto.py(S3_KEY, "s3.create_bucket(Bucket='footage', ObjectLockEnabledForBucket=True)", &[]);
}

/// One stored version of an object, as the S3 server reports it.
#[derive(Debug, Clone)]
struct Version {
    version: String,
    latest: bool,
    mode: Option<String>,
    until_ms: Option<i64>,
    legal_hold: Option<String>,
}

/// Every version under `site-a/` by key; the newest version of each pack is also written
/// under `dump`, to find which pack holds which segment.
fn bucket(moto: &TestMoto, dump: &Path) -> BTreeMap<String, Vec<Version>> {
    let script = r#"
import os
out = {}
pages = s3.get_paginator('list_object_versions').paginate(Bucket='footage', Prefix='site-a/')
for page in pages:
    for v in page.get('Versions', []):
        k, vid = v['Key'], v['VersionId']
        h = s3.head_object(Bucket='footage', Key=k, VersionId=vid)
        until = h.get('ObjectLockRetainUntilDate')
        out.setdefault(k, []).append({
            'version': vid, 'latest': v['IsLatest'], 'mode': h.get('ObjectLockMode'),
            'until_ms': int(round(until.timestamp() * 1000)) if until else None,
            'legal_hold': h.get('ObjectLockLegalHoldStatus')})
        if v['IsLatest'] and '/packs/' in k:
            p = os.path.join(sys.argv[1], k)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, 'wb') as f:
                f.write(s3.get_object(Bucket='footage', Key=k, VersionId=vid)['Body'].read())
print(json.dumps(out))
"#;
    let text = moto.py(S3_KEY, script, &[dump.to_str().unwrap()]);
    let all: BTreeMap<String, Vec<serde_json::Value>> =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let word = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_string);
    all.into_iter()
        .map(|(k, vs)| {
            let vs = vs
                .iter()
                .map(|v| Version {
                    version: word(v, "version").unwrap(),
                    latest: v["latest"].as_bool().unwrap(),
                    mode: word(v, "mode"),
                    until_ms: v["until_ms"].as_i64(),
                    legal_hold: word(v, "legal_hold"),
                })
                .collect();
            (k, vs)
        })
        .collect()
}

/// The packs (key, newest member's end) holding the given segments' blobs, among those
/// dumped; segments not in the bucket yet are left out.
fn packs_of(node: &Node, dump: &Path, segs: &[custos_proto::v1::Segment]) -> BTreeMap<String, i64> {
    let files: Vec<(String, Vec<u8>)> = walk(dump)
        .into_iter()
        .map(|p| (p.strip_prefix(dump).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    let mut out = BTreeMap::new();
    for s in segs {
        let Some(blob) = node.blob(&s.content_hash) else { continue };
        if let Some((key, _)) = files.iter().find(|(_, data)| data.windows(blob.len()).any(|w| w == blob.as_slice())) {
            let end = out.entry(key.clone()).or_insert(i64::MIN);
            *end = (*end).max(s.end_ms);
        }
    }
    out
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn latest(b: &BTreeMap<String, Vec<Version>>, key: &str) -> Version {
    b[key].iter().find(|v| v.latest).unwrap_or_else(|| panic!("{key} has no current version")).clone()
}

/// S3 retain-until dates are whole seconds; the node rounds up.
fn ceil_s(ms: i64) -> i64 {
    (ms + 999) / 1000 * 1000
}

/// Tries to delete `key`'s version `version` with the node's own credentials, then
/// without a version id; says what the server did.
fn try_delete(moto: &TestMoto, key: &str, version: &str) -> String {
    let script = r#"
key, vid = sys.argv[1], sys.argv[2]
try:
    s3.delete_object(Bucket='footage', Key=key, VersionId=vid)
    print('version deleted')
except Exception as e:
    print('version refused', e.response['Error']['Code'])
r = s3.delete_object(Bucket='footage', Key=key)
print('plain delete marker', r.get('DeleteMarker'))
body = s3.get_object(Bucket='footage', Key=key, VersionId=vid)['Body'].read()
print('version still readable', len(body))
"#;
    moto.py(S3_KEY, script, &[key, version])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_bucket_keeps_footage_snapshots_and_seals_even_from_the_nodes_own_credentials() {
    let moto = TestMoto::start();
    locked_bucket(&moto);
    let mut node = Node::init(&["lobby=test://ball".to_string(), "gate=test://snow".to_string()], 1_000);
    node.configure("seal_every_s = 2");
    node.append_config(&backup_section(&moto));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let t_start = now_ms();
    let admin = node.start().await;
    let sec = node.user("guard", "security", None).await;
    let boss = node.connect(Some(&node.approver)).await.unwrap();
    node.approved(admin.set_policy(Some("lobby"), 45, 60).await).await.unwrap();
    let t_policy = now_ms();
    let from = t_start - 60_000;
    let hold = sec.place_hold("case-gate", &["gate".to_string()], from, None, PURPOSE).await.unwrap();

    // Packs of both cameras, a snapshot and a seal in the bucket; the gate's packs
    // (footage under the hold) all under a legal hold, even those written before it.
    let dump = tempfile::tempdir().unwrap();
    let (b, lobby, gate) = wait_for(120, "locked packs, snapshots and seals in the bucket", || async {
        // The bucket first: every segment in a pack it shows is then in the search.
        let _ = std::fs::remove_dir_all(dump.path());
        let b = bucket(&moto, dump.path());
        let l = sec.search("lobby", from, now_ms(), PURPOSE).await.ok()?.0;
        let g = sec.search("gate", from, now_ms(), PURPOSE).await.ok()?.0;
        let (lp, gp) = (packs_of(&node, dump.path(), &l), packs_of(&node, dump.path(), &g));
        let has = |dir: &str| b.keys().any(|k| k.starts_with(dir));
        let after_policy = lp.values().any(|end| *end > t_policy + 2_000);
        let all_held = gp.keys().all(|k| latest(&b, k).legal_hold.as_deref() == Some("ON"));
        (after_policy && gp.len() >= 2 && all_held && has("site-a/snapshots/") && has("site-a/seals/"))
            .then_some((b, lp, gp))
    })
    .await;
    let t_seen = now_ms();

    for (key, versions) in &b {
        if key.starts_with("site-a/state/") {
            continue; // the worker's own bookkeeping, overwritten in place
        }
        for v in versions {
            assert_eq!(v.mode.as_deref(), Some("COMPLIANCE"), "{key} {v:?}");
        }
    }
    // Packs: the newest footage's end + the camera's min_days, to the second.
    for (k, end) in &lobby {
        let v = latest(&b, k);
        let until = v.until_ms.unwrap();
        if *end > t_policy + 2_000 {
            assert_eq!(until, ceil_s(end + 45 * DAY), "lobby pack {k}: min_days 45");
        } else {
            assert!([ceil_s(end + 30 * DAY), ceil_s(end + 45 * DAY)].contains(&until), "lobby pack {k}: {v:?}");
        }
        assert_ne!(v.legal_hold.as_deref(), Some("ON"), "no hold covers the lobby: {k}");
    }
    for (k, end) in &gate {
        assert_eq!(latest(&b, k).until_ms, Some(ceil_s(end + 30 * DAY)), "gate pack {k}");
    }
    // Snapshots and seals: the 30-day floor from when they were written.
    for (key, versions) in
        b.iter().filter(|(k, _)| k.starts_with("site-a/snapshots/") || k.starts_with("site-a/seals/"))
    {
        for v in versions {
            let until = v.until_ms.unwrap();
            assert!(until >= t_start + 30 * DAY - 1_000 && until <= t_seen + 30 * DAY + 1_000, "{key}: {v:?}");
        }
    }

    // The hold's two-person release takes the legal holds off; one approval does not.
    sec.approve_release(&hold.id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let b1 = bucket(&moto, dump.path());
    for k in gate.keys() {
        assert_eq!(latest(&b1, k).legal_hold.as_deref(), Some("ON"), "one approval: {k}");
    }
    boss.approve_release(&hold.id).await.unwrap();
    wait_for(60, "legal holds released", || async {
        let b = bucket(&moto, dump.path());
        gate.keys().all(|k| latest(&b, k).legal_hold.as_deref() != Some("ON")).then_some(())
    })
    .await;

    // The node's own credentials cannot delete a locked pack, snapshot or seal: the
    // server refuses to delete the version, and a plain DELETE only hides it behind a
    // delete marker (the bytes stay, readable by version).
    let pack = lobby.keys().next().unwrap().clone();
    let snapshot = b.keys().find(|k| k.starts_with("site-a/snapshots/")).unwrap().clone();
    let seal = b.keys().find(|k| k.starts_with("site-a/seals/")).unwrap().clone();
    for key in [&pack, &snapshot, &seal] {
        let v = latest(&b, key);
        let said = try_delete(&moto, key, &v.version);
        println!("{key}: {said}");
        assert!(said.contains("version refused AccessDenied"), "{key}: {said}");
        assert!(said.contains("plain delete marker True") && said.contains("version still readable"), "{key}: {said}");
    }
    let st = admin.status().await.unwrap();
    assert!(st.backup_last_error.is_empty(), "{st:?}");
    let log = std::fs::read_to_string(node.dir.path().join("node-1.log")).unwrap();
    assert!(log.contains("Object Lock on"), "the node says it locks");
    node.stop();
}

/// On a simulated clock 61 days on, the cluster expires footage whose packs the bucket
/// still keeps (its own clock says their retention has weeks to run): the deletion is
/// refused, the packs wait in the bucket trash and the log says so, without an alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_packs_still_under_retention_wait_in_the_trash_without_an_alarm() {
    let moto = TestMoto::start();
    locked_bucket(&moto);
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset-ms");
    std::fs::write(&clock, "0").unwrap();
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    node.configure("expiry_every_s = 1");
    node.append_config(&backup_section(&moto));
    node.env = vec![("AWS_ACCESS_KEY_ID".into(), S3_KEY.0.into()), ("AWS_SECRET_ACCESS_KEY".into(), S3_KEY.1.into())];
    let admin = node.start_sim(&clock).await;
    node.approved(admin.set_policy(Some("lobby"), 30, 60).await).await.unwrap();
    let dump = tempfile::tempdir().unwrap();
    let packs = wait_for(60, "lobby packs in the bucket", || async {
        let b = bucket(&moto, dump.path());
        let packs: Vec<String> = b.keys().filter(|k| k.starts_with("site-a/packs/")).cloned().collect();
        (packs.len() >= 2).then_some(packs)
    })
    .await;

    std::fs::write(&clock, (61 * DAY).to_string()).unwrap();
    // A jump that large stops expiry until someone confirms it (the bucket's own clock,
    // which would confirm it, is the real one).
    node.confirm_clock_jumps(&[node.node_id()]).await;
    let log_path = node.dir.path().join("node-1.log");
    wait_for(60, "the refused deletion logged", || async {
        let log = std::fs::read_to_string(&log_path).ok()?;
        log.contains("still under Object Lock retention").then_some(())
    })
    .await;
    let b = bucket(&moto, dump.path());
    for k in &packs {
        let v = latest(&b, k);
        assert_eq!(v.mode.as_deref(), Some("COMPLIANCE"), "{k} is still there, current and locked");
    }
    // The waiting packs are listed in the bucket, to be tried again hourly.
    let listed = moto.py(
        S3_KEY,
        "print(s3.get_object(Bucket='footage', Key='site-a/state/trash-locked')['Body'].read().decode())",
        &[],
    );
    for k in &packs {
        let hash = k.rsplit('/').next().unwrap();
        assert!(listed.contains(hash), "{hash} not in the locked trash list: {listed}");
    }
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let st = admin.status().await.unwrap();
    assert!(st.backup_last_error.is_empty(), "a pack under retention is no backup failure: {st:?}");
    assert!(!st.alarms.iter().any(|a| a.contains("backup")), "{:?}", st.alarms);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let said = log.matches("still under Object Lock retention").count();
    assert!(said <= listed.lines().count(), "said when packs are refused, not every round: {said} times");
    node.stop();
}
