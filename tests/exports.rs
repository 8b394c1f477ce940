//! Evidence exports end to end on footage recorded from a real RTSP camera: request,
//! refusals before approval and across cases, a second person's approval, the signed
//! package, resumable download, offline verification, and the archived copy's root.

mod common;

use std::path::Path;

use common::{demux_h264, ffprobe, now_ms, pdftotext, wait_for, Node, TestCamera};
use custos_evidence::export::{verify_package, Manifest, MANIFEST_FILE, RECEIPT_FILE};
use tonic::Code;

const PURPOSE: &str = "court order 2026-114: assault in the emergency department";

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_workflow_signed_package_and_identical_archived_copy() {
    let cam = TestCamera::start_with(0, &["--keyint", "25"]);
    let hospital = ["--hospital", "St. Example General Hospital / 圣例综合医院"];
    let mut node = Node::init_with(&[format!("door={}", cam.url)], 1_000, &hospital);
    node.start().await;
    let sec = node.user("li.wei", "security", None).await;
    let sec2 = node.user("zhang.min", "security", None).await;
    let appr = node.user("dr.chen", "approver", None).await;
    let inv = node.user("officer.wu", "investigator", Some("case-7")).await;
    let other = node.user("officer.ma", "investigator", Some("case-9")).await;
    let auditor = node.user("audit.office", "auditor", None).await;

    let t0 = now_ms();
    let segs = wait_for(60, "six recorded segments", || async {
        let s = sec.search("door", t0 - 60_000, now_ms(), PURPOSE).await.ok()?.0;
        (s.len() >= 6).then_some(s)
    })
    .await;
    let (from, to) = (segs[1].start_ms, segs[4].end_ms);

    let e = sec
        .request_export("case-7", "City Police Station 3", "letter 2026-114", PURPOSE, &[("door".into(), from, to)])
        .await
        .unwrap();
    assert_eq!(e.status, "requested");
    let id = e.id.clone();

    // Nothing runs or downloads before a second person approves.
    let err = sec.run_export(&id).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    assert!(err.to_string().contains("not approved"), "{err}");
    let err = inv.download_export_file(&id, MANIFEST_FILE, 0, &mut Vec::new(), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    // Security staff cannot approve (their own request or anyone's); approvers can.
    assert_eq!(sec.decide_export(&id, true, "").await.unwrap_err().code(), Some(Code::PermissionDenied));
    assert_eq!(sec2.decide_export(&id, true, "").await.unwrap_err().code(), Some(Code::PermissionDenied));
    let e = appr.decide_export(&id, true, "letter checked with the station").await.unwrap();
    assert_eq!((e.status.as_str(), e.decided_by.as_str()), ("approved", "dr.chen"));
    assert_eq!(
        appr.decide_export(&id, false, "changed my mind").await.unwrap_err().code(),
        Some(Code::FailedPrecondition)
    );

    let done = sec.run_export(&id).await.unwrap();
    assert_eq!(done.status, "done");
    assert_eq!(done.merkle_root.len(), 64);
    let holds = sec.list_holds(false).await.unwrap();
    assert!(holds.iter().any(|h| h.id == done.hold_id && h.case_id == "case-7"), "the archived copy is held");

    // An investigator of another case sees nothing of it.
    assert_eq!(other.get_export(&id).await.unwrap_err().code(), Some(Code::PermissionDenied));
    let err = other.download_export_file(&id, MANIFEST_FILE, 0, &mut Vec::new(), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied));
    assert!(other.list_exports().await.unwrap().is_empty());

    // The investigator downloads; an interrupted download resumes.
    let tmp = tempfile::tempdir().unwrap();
    let got = tmp.path().join("investigator");
    inv.download_export(&id, &got, |_, _| {}).await.unwrap();
    let media = read(&got, "door.ts");
    std::fs::remove_file(got.join("door.ts")).unwrap();
    std::fs::write(got.join("door.ts.part"), &media[..media.len() / 3]).unwrap();
    inv.download_export(&id, &got, |_, _| {}).await.unwrap();
    assert_eq!(read(&got, "door.ts"), media, "the resumed download is the same file");

    let key = sec.signing_key().await.unwrap();
    let v = verify_package(&got, Some(&key.public_key)).unwrap();
    assert_eq!(v.merkle_root, done.merkle_root, "the investigator's copy has the archived copy's root");
    let manifest: Manifest = serde_json::from_slice(&read(&got, MANIFEST_FILE)).unwrap();
    assert_eq!(manifest.segments.len(), 4);
    assert_eq!((manifest.requester.as_str(), manifest.approver.as_str()), ("li.wei", "dr.chen"));
    assert_eq!(manifest.segments.first().unwrap().start_ms, from);

    // The hospital's archived copy, read back through the cluster, is identical.
    let archived = tmp.path().join("archive");
    sec2.download_export(&id, &archived, |_, _| {}).await.unwrap();
    for f in ["manifest.json", "manifest.sig", "door.ts", "door.mp4", RECEIPT_FILE] {
        assert_eq!(read(&got, f), read(&archived, f), "{f} differs between the two copies");
    }
    assert_eq!((v.mp4s, v.receipt), (1, true), "the package holds the MP4 and the receipt");

    // The MP4 plays elsewhere: FFmpeg reads the same codec and the catalogued duration.
    let catalogued = manifest.segments.last().unwrap().end_ms - manifest.segments[0].start_ms;
    let (codec, mp4_ms) = ffprobe(&got.join("door.mp4"));
    assert_eq!(codec, "h264");
    assert!((mp4_ms - catalogued).abs() <= 200, "MP4 lasts {mp4_ms} ms, catalogued {catalogued} ms");
    // A resumed MP4 download is the same file too (it is rebuilt from the segments).
    let mp4 = read(&got, "door.mp4");
    std::fs::remove_file(got.join("door.mp4")).unwrap();
    std::fs::write(got.join("door.mp4.part"), &mp4[..mp4.len() / 2]).unwrap();
    inv.download_export(&id, &got, |_, _| {}).await.unwrap();
    assert_eq!(read(&got, "door.mp4"), mp4);

    // The custody receipt names the case, the letter, the people, the hospital and the
    // Merkle root, and `custos export receipt` prints the same file again.
    let text = pdftotext(&got.join(RECEIPT_FILE));
    for needle in [
        done.merkle_root.as_str(),
        "letter 2026-114",
        "City Police Station 3",
        "li.wei",
        "dr.chen",
        "圣例综合医院",
        "door.mp4",
    ] {
        assert!(text.contains(needle), "the receipt lacks {needle:?}:\n{text}");
    }
    let again = tmp.path().join("again.pdf");
    let inv_token = node.user_token("officer.qian", "investigator", Some("case-7"), 0).await;
    let out = node.cli(&inv_token, &["export", "receipt", &id, "-o", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&again).unwrap(), read(&got, RECEIPT_FILE));

    // It plays: GStreamer demuxes and parses it with the catalogued duration.
    let (frames, first, last) = demux_h264(&got.join("door.ts"));
    let span_ms = ((last - first) / 1_000_000) as i64;
    assert!(frames > 50, "{frames} frames");
    assert!((span_ms - catalogued).abs() <= 100, "played {span_ms} ms, catalogued {catalogued} ms");

    // One changed byte in the MP4 or the receipt is found and named.
    for f in ["door.mp4", RECEIPT_FILE] {
        let good = read(&got, f);
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x01;
        std::fs::write(got.join(f), &bad).unwrap();
        let problems = verify_package(&got, Some(&key.public_key)).unwrap_err();
        assert_eq!(problems, vec![format!("{f}: BLAKE3 differs from the manifest")]);
        std::fs::write(got.join(f), &good).unwrap();
    }

    // One changed byte in the media, or in the manifest, is found and named.
    let mut bad = media.clone();
    let victim = &manifest.segments[2];
    bad[(victim.offset + victim.bytes / 2) as usize] ^= 0x01;
    std::fs::write(got.join("door.ts"), &bad).unwrap();
    let problems = verify_package(&got, Some(&key.public_key)).unwrap_err();
    assert!(problems.iter().any(|p| p.contains("door.ts: BLAKE3 differs")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains(&format!("segment door@{}", victim.start_ms))), "{problems:?}");
    std::fs::write(got.join("door.ts"), &media).unwrap();
    let text =
        String::from_utf8(read(&got, MANIFEST_FILE)).unwrap().replace("City Police Station 3", "City Police Station 8");
    std::fs::write(got.join(MANIFEST_FILE), text).unwrap();
    let problems = verify_package(&got, Some(&key.public_key)).unwrap_err();
    assert!(problems.iter().any(|p| p.contains("manifest.sig")), "{problems:?}");

    // The CLI verifies offline too, and says what differs.
    let out = std::process::Command::new(common::bin("custos"))
        .args(["export", "verify"])
        .arg(&archived)
        .args(["--pubkey", &key.public_key])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("(1 MP4, the custody receipt)"), "{said}");
    let out = std::process::Command::new(common::bin("custos")).args(["export", "verify"]).arg(&got).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.sig"));

    // Every step is in the audit log, the run with its root.
    let log = auditor.audit_log(Default::default()).await.unwrap();
    let bodies: Vec<serde_json::Value> = log.iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect();
    for action in ["export-request", "export-decide", "export-run", "export-download"] {
        assert!(bodies.iter().any(|b| b["action"] == action), "no {action} entry");
    }
    assert!(bodies
        .iter()
        .any(|b| b["action"] == "export-run" && b["detail"].as_str().unwrap().contains(&done.merkle_root)));
    node.stop();
}

/// An export of an H.265 camera carries an MP4 that FFmpeg reads as HEVC with the
/// catalogued duration, made without transcoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_exports_carry_an_mp4_of_the_same_pictures() {
    let cam = TestCamera::start_with(0, &["--codec", "h265", "--width", "320", "--height", "240", "--keyint", "25"]);
    let mut node = Node::init(&[format!("ward={}", cam.url)], 1_000);
    node.start().await;
    let sec = node.user("li.wei", "security", None).await;
    let appr = node.user("dr.chen", "approver", None).await;
    let t0 = now_ms();
    let segs = wait_for(60, "four recorded segments", || async {
        let s = sec.search("ward", t0 - 60_000, now_ms(), PURPOSE).await.ok()?.0;
        (s.len() >= 4).then_some(s)
    })
    .await;
    assert!(segs.iter().all(|s| s.codec == "h265"));
    let (from, to) = (segs[1].start_ms, segs[3].end_ms);
    let e = sec
        .request_export("case-8", "Court of Example", "order 77", PURPOSE, &[("ward".into(), from, to)])
        .await
        .unwrap();
    appr.decide_export(&e.id, true, "").await.unwrap();
    sec.run_export(&e.id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    sec.download_export(&e.id, dir.path(), |_, _| {}).await.unwrap();
    let v = verify_package(dir.path(), Some(&sec.signing_key().await.unwrap().public_key)).unwrap();
    assert_eq!((v.mp4s, v.receipt, v.segments), (1, true, 3));
    let (codec, ms) = ffprobe(&dir.path().join("ward.mp4"));
    assert_eq!(codec, "hevc");
    let catalogued = segs[3].end_ms - segs[1].start_ms;
    assert!((ms - catalogued).abs() <= 200, "MP4 lasts {ms} ms, catalogued {catalogued} ms");
    // The receipt says the hospital name is not configured rather than leaving a blank.
    assert!(pdftotext(&dir.path().join(RECEIPT_FILE)).contains("not configured"));
    node.stop();
}

/// GRAY8 frames (width, height, rows without padding) of an MP4, decoded by GStreamer.
fn gray_frames(path: &Path) -> (usize, usize, Vec<Vec<u8>>) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let desc = format!(
        "filesrc location={} ! qtdemux ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=sink \
         sync=false",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gstreamer_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut w, mut h, mut frames) = (0, 0, Vec::new());
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(20)) {
        let st = s.caps().unwrap().structure(0).unwrap().to_owned();
        (w, h) = (st.get::<i32>("width").unwrap() as usize, st.get::<i32>("height").unwrap() as usize);
        let map = s.buffer().unwrap().map_readable().unwrap();
        frames.push(map.as_slice().chunks(w.div_ceil(4) * 4).take(h).flat_map(|r| r[..w].to_vec()).collect());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (w, h, frames)
}

/// Variance of a frame's pixels in the box [x0, x1) × [y0, y1).
fn variance(frame: &[u8], w: usize, (x0, x1, y0, y1): (usize, usize, usize, usize)) -> f64 {
    let v: Vec<f64> = (y0..y1).flat_map(|y| (x0..x1).map(move |x| frame[y * w + x] as f64)).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / v.len() as f64
}

/// Privacy zones (set through the change queue) and a request's own box are filled in the
/// redacted copy, the rest of the picture is kept, the approver's decision withholds the
/// originals from the package, and the package still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redacted_exports_fill_the_zones_and_withhold_the_originals() {
    let cam = TestCamera::start_with(0, &["--pattern", "smpte", "--width", "320", "--height", "240", "--keyint", "25"]);
    let mut node = Node::init(&[format!("ward={}", cam.url)], 1_000);
    node.start().await;
    let admin = node.connect(Some(&node.token)).await.unwrap();
    let boss = node.connect(Some(&node.approver)).await.unwrap();
    let sec = node.user("li.wei", "security", None).await;
    let appr = node.user("dr.chen", "approver", None).await;
    let inv = node.user("officer.wu", "investigator", Some("case-9")).await;
    let auditor = node.user("audit.office", "auditor", None).await;

    // A privacy zone waits for an approver; a degenerate one is refused with the reason.
    let err = admin.set_privacy_zones("ward", &["0,0 0.5,0.5 1,1".into()]).await.unwrap_err();
    assert!(err.to_string().contains("no area"), "{err}");
    let change = admin.set_privacy_zones("ward", &["0.25,0.25,0.5,0.5".into()]).await.unwrap().expect("pending");
    assert!(admin.list_cameras().await.unwrap()[0].privacy_zones.is_empty(), "nothing before the approval");
    boss.decide_change(change, true, "the bed by the window").await.unwrap();
    assert_eq!(admin.list_cameras().await.unwrap()[0].privacy_zones, ["0.25,0.25 0.75,0.25 0.75,0.75 0.25,0.75"]);

    let t0 = now_ms();
    let segs = wait_for(60, "four recorded segments", || async {
        let s = sec.search("ward", t0 - 60_000, now_ms(), PURPOSE).await.ok()?.0;
        (s.len() >= 4).then_some(s)
    })
    .await;
    let range = [("ward".to_string(), segs[1].start_ms, segs[3].end_ms)];
    // A box for a camera the request does not export is refused.
    let err = sec
        .request_export_with("case-9", "Court", "order 9", PURPOSE, &range, Some(&["lift:0,0,0.1,0.1".into()]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    // The top strip, across every bar, is this request's own box.
    let e = sec
        .request_export_with("case-9", "Court", "order 9", PURPOSE, &range, Some(&["ward:0,0,1,0.1".into()]))
        .await
        .unwrap();
    assert!(e.redacted && e.originals.is_empty());
    let e = appr.decide_export_with(&e.id, true, "patients in the next bed", false).await.unwrap();
    assert_eq!(e.originals, "withheld");
    sec.run_export(&e.id).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    inv.download_export(&e.id, dir.path(), |_, _| {}).await.unwrap();
    assert!(!dir.path().join("ward.ts").exists() && !dir.path().join("ward.mp4").exists(), "originals withheld");
    let err = inv.download_export_file(&e.id, "ward.ts", 0, &mut Vec::new(), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    // The attempt is in the audit log, like every refused download.
    let log = auditor.audit_log(Default::default()).await.unwrap();
    let bodies: Vec<serde_json::Value> = log.iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect();
    assert!(
        bodies.iter().any(|b| b["action"] == "export-download"
            && b["outcome"] == "denied"
            && b["user"] == "officer.wu"
            && b["reason"].as_str().unwrap_or_default().contains("withheld")),
        "no audited refusal of the withheld original"
    );
    let v = verify_package(dir.path(), Some(&sec.signing_key().await.unwrap().public_key)).unwrap();
    assert_eq!((v.redacted, v.receipt, v.withheld.clone()), (1, true, vec!["ward.ts".into(), "ward.mp4".into()]));
    let manifest: Manifest = serde_json::from_slice(&read(dir.path(), MANIFEST_FILE)).unwrap();
    let red = manifest.files.iter().find(|f| f.name == "ward-redacted.mp4").unwrap();
    assert_eq!(red.zones.len(), 2, "the camera's zone and the request's box are named: {:?}", red.zones);

    // The redacted copy plays in FFmpeg with the catalogued duration; the zone and the box
    // are flat, the rest of the picture is the bars.
    let (codec, ms) = ffprobe(&dir.path().join("ward-redacted.mp4"));
    let catalogued = segs[3].end_ms - segs[1].start_ms;
    assert!(codec == "h264" && (ms - catalogued).abs() <= 200, "{codec}, {ms} ms against {catalogued} ms");
    let (w, h, frames) = gray_frames(&dir.path().join("ward-redacted.mp4"));
    assert_eq!((w, h), (320, 240));
    assert!(frames.len() > 50, "{} frames", frames.len());
    for f in &frames {
        let zone = variance(f, w, (84, 236, 64, 176));
        let strip = variance(f, w, (0, w, 0, 20));
        let kept = variance(f, w, (0, w, 30, 56));
        assert!(zone < 2.0 && strip < 2.0, "zone variance {zone}, box variance {strip}");
        assert!(kept > 300.0, "outside the zones the bars are kept: variance {kept}");
    }
    // A changed byte in the redacted copy is found.
    let path = dir.path().join("ward-redacted.mp4");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let problems = verify_package(dir.path(), None).unwrap_err();
    assert_eq!(problems, vec!["ward-redacted.mp4: BLAKE3 differs from the manifest".to_string()]);
    node.stop();
}

/// The second-person rule holds in the state machine itself: even a hand-made command
/// cannot let the requester decide their own export, nor decide one twice, nor complete
/// one that was not approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_machine_refuses_self_approval_and_unapproved_runs() {
    use custos_node::meta::{Command, ExportRecord, ExportStatus, Meta, Response};
    let dir = tempfile::tempdir().unwrap();
    let clock: custos_node::clock::SharedClock = std::sync::Arc::new(custos_node::clock::SystemClock);
    let meta = Meta::start(1, dir.path(), "127.0.0.1:1".into(), clock).await.unwrap();
    let mut rec = ExportRecord::request(
        ("case-1".into(), "Court".into(), "L".into()),
        PURPOSE.into(),
        "li.wei".into(),
        vec![("door".into(), 1, 2)],
    );
    rec.status = ExportStatus::Approved; // ignored: a request always starts as requested
    let Response::Created(id) = meta.propose(Command::RequestExport(rec)).await.unwrap() else { panic!() };
    let hold = custos_node::retention::Hold {
        id: String::new(),
        case_id: "case-1".into(),
        cameras: vec!["door".into()],
        from_ms: 1,
        to_ms: Some(2),
        reason: "x".into(),
        placed_by: "li.wei".into(),
        placed_ms: 0,
        release_approvals: vec![],
        released_ms: None,
    };
    let complete = Command::CompleteExport {
        id: id.clone(),
        manifest: "{}".into(),
        signature: String::new(),
        merkle_root: String::new(),
        hold,
    };
    let r = meta.propose(complete.clone()).await.unwrap();
    assert!(matches!(&r, Response::Rejected(_, w) if w.contains("not approved")), "{r:?}");
    let decide =
        |user: &str| Command::DecideExport { id: id.clone(), user: user.into(), approve: true, reason: String::new() };
    let r = meta.propose(decide("li.wei")).await.unwrap();
    assert!(matches!(&r, Response::Rejected(_, w) if w.contains("cannot also decide")), "{r:?}");
    assert_eq!(meta.propose(decide("dr.chen")).await.unwrap(), Response::Ok);
    let r = meta.propose(decide("dr.wang")).await.unwrap();
    assert!(matches!(&r, Response::Rejected(_, w) if w.contains("already approved")), "{r:?}");
    assert_eq!(meta.propose(complete).await.unwrap(), Response::Ok);
    let stored = meta.catalog.export(&id).unwrap().unwrap();
    assert_eq!(stored.status, ExportStatus::Done);
    assert!(meta.catalog.hold(stored.hold_id.as_deref().unwrap()).unwrap().is_some(), "the hold came with it");
}
