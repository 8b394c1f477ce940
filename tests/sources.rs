//! Sources beyond a plain H.264 camera: an H.265 RTSP camera (passed through, never
//! transcoded) and a recorded file replayed through `file://`.

mod common;

use std::process::Command;

use common::{demux, now_ms, wait_for, Node, TestCamera};

const PURPOSE: &str = "source test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_rtsp_and_file_sources_record_without_transcoding() {
    // A 6-second H.264 clip in MP4, made with GStreamer.
    let clip_dir = tempfile::tempdir().unwrap();
    let clip = clip_dir.path().join("clip.mp4");
    let st = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=150",
            "pattern=ball",
            "!",
            "video/x-raw,format=I420,width=320,height=240,framerate=25/1",
        ])
        .args([
            "!",
            "x264enc",
            "key-int-max=25",
            "speed-preset=ultrafast",
            "!",
            "h264parse",
            "!",
            "mp4mux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", clip.display()))
        .status()
        .expect("gst-launch-1.0 (ops/setup.sh installs gstreamer1.0-tools)");
    assert!(st.success());

    let cam = TestCamera::start_with(0, &["--codec", "h265", "--width", "320", "--height", "240", "--keyint", "25"]);
    let mut node = Node::init(&[format!("theatre={}", cam.url), format!("replay=file://{}", clip.display())], 1_000);
    let c = node.start_as_security().await;
    let t0 = now_ms() - 60_000;

    let segs = wait_for(60, "H.265 segments", || async {
        let s = c.search("theatre", t0, now_ms() + 60_000, PURPOSE).await.ok()?.0;
        (s.len() >= 4).then_some(s)
    })
    .await;
    assert!(segs.iter().all(|s| s.codec == "h265"), "codec is detected, not assumed");
    let mut out = Vec::new();
    c.fetch("theatre", segs[0].start_ms, segs[3].end_ms, PURPOSE, &mut out, |_| {}).await.unwrap();
    let f = node.dir.path().join("theatre.ts");
    std::fs::write(&f, &out).unwrap();
    let (frames, _, _) = demux(&f, "h265parse");
    let expected = ((segs[3].end_ms - segs[0].start_ms) / 40) as usize;
    assert!(frames.abs_diff(expected) <= 2, "{frames} frames, expected about {expected}");

    // The file plays once in real time, then its camera reports `ended`.
    let st = wait_for(40, "file source to end", || async {
        let s = c.status().await.ok()?;
        s.cameras.into_iter().find(|x| x.id == "replay" && x.state == "ended")
    })
    .await;
    assert_eq!(st.state, "ended");
    // `ended` is the camera's state; its last segment may still be sealing and committing.
    let segs = wait_for(20, "the whole clip committed", || async {
        let s = c.search("replay", t0, now_ms() + 60_000, PURPOSE).await.ok()?.0;
        let secs: i64 = s.iter().map(|s| s.end_ms - s.start_ms).sum();
        (secs >= 5_500).then_some(s)
    })
    .await;
    let secs: i64 = segs.iter().map(|s| s.end_ms - s.start_ms).sum();
    assert!(secs <= 6_500, "6 s clip recorded as {secs} ms over {} segments", segs.len());
    assert!(segs.iter().all(|s| s.codec == "h264"));
    node.stop();
}

/// `first_mb_in_slice` of an H.264 slice NAL unit (an unsigned Exp-Golomb code after the
/// one-byte header).
fn first_mb(nal: &[u8]) -> u64 {
    let bit = |i: usize| (nal[1 + i / 8] >> (7 - i % 8)) & 1;
    let mut zeros = 0;
    while bit(zeros) == 0 {
        zeros += 1;
    }
    let mut v = 1u64;
    for i in 0..zeros {
        v = (v << 1) | u64::from(bit(zeros + 1 + i));
    }
    v - 1
}

/// A camera that repeats SPS and PPS before each slice of a keyframe (as GStreamer's
/// `rtph264pay config-interval=-1` does, and the test camera with it) makes the parser
/// split every keyframe into one access unit per slice, the later ones without a
/// timestamp. The recorder used to drop those, archiving keyframes with half the picture
/// missing (a browser showed green where the slices were). Every slice of every keyframe
/// must be kept, in one access unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_slice_of_every_keyframe_is_archived() {
    use custos_formats::segmenter::nal_units;
    let cam = TestCamera::start(0);
    let mut node = Node::init(&[format!("lobby={}", cam.url)], 2_000);
    let viewer = node.start_as_security().await;
    let t0 = now_ms();
    wait_for(60, "three segments", || async {
        let (segs, _) = viewer.search("lobby", t0 - 60_000, now_ms(), PURPOSE).await.ok()?;
        (segs.len() >= 3).then_some(())
    })
    .await;
    let mut ts = Vec::new();
    let segs = viewer.fetch("lobby", t0 - 60_000, now_ms(), PURPOSE, &mut ts, |_| {}).await.unwrap();
    let mut frames = Vec::new();
    let mut at = 0usize;
    for s in &segs {
        let n = s.bytes as usize;
        frames.extend(custos_formats::mpegts::demux(&ts[at..at + n]).unwrap().frames);
        at += n;
    }
    let d = custos_formats::mpegts::Demuxed { stream_type: 0x1B, service_name: None, frames };
    let slices = |data: &[u8], kind: u8| -> Vec<u64> {
        nal_units(data)
            .into_iter()
            .filter(|(s, _)| data[*s] & 0x1F == kind)
            .map(|(s, e)| first_mb(&data[s..e]))
            .collect()
    };
    let p_frames: Vec<Vec<u64>> = d.frames.iter().filter(|f| !f.keyframe).map(|f| slices(&f.data, 1)).collect();
    let whole = p_frames.iter().max_by_key(|s| s.len()).cloned().unwrap();
    assert!(whole.len() >= 2, "the camera sends one slice per picture here, so this proves nothing: {whole:?}");
    let keys: Vec<Vec<u64>> = d.frames.iter().filter(|f| f.keyframe).map(|f| slices(&f.data, 5)).collect();
    assert!(keys.len() >= 2, "{} keyframes", keys.len());
    for k in &keys {
        assert_eq!(
            k, &whole,
            "a keyframe lost slices: it starts slices at macroblocks {k:?}, the pictures at {whole:?}"
        );
    }
}

/// Most IP cameras ask for RTSP digest authentication. With the right credentials in its
/// URL (a password typed with an unencoded `@`, as people type them) a camera records,
/// through either receiver; with the wrong ones it is down with the camera's own answer
/// in the error, and neither password reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_auth_cameras_record_with_their_credentials_and_say_when_refused() {
    const PASSWORD: &str = "s3cr@t-Ward7";
    const WRONG: &str = "not-the-one";
    let cam = TestCamera::start_with(0, &["--user", "custos", "--password", PASSWORD]);
    let authed = cam.url.replacen("rtsp://", &format!("rtsp://custos:{PASSWORD}@"), 1);
    let wrong = cam.url.replacen("rtsp://", &format!("rtsp://custos:{WRONG}@"), 1);
    for receiver in ["native", "gstreamer"] {
        let mut node = Node::init(&[format!("door={authed}"), format!("locked={wrong}")], 1_000);
        node.configure(&format!("rtsp_receiver = \"{receiver}\""));
        let c = node.start_as_security().await;
        let t0 = now_ms() - 1_000;
        wait_for(60, "segments from the camera with the right credentials", || async {
            let (s, _) = c.search("door", t0, now_ms() + 60_000, PURPOSE).await.ok()?;
            (s.len() >= 2).then_some(())
        })
        .await;
        let st = wait_for(30, "the camera with the wrong password down", || async {
            let s = c.status().await.ok()?;
            s.cameras.into_iter().find(|x| x.id == "locked" && x.state == "down" && !x.last_error.is_empty())
        })
        .await;
        assert!(
            st.last_error.contains("401") || st.last_error.contains("Unauthorized"),
            "{receiver}: {}",
            st.last_error
        );
        let (s, _) = c.search("locked", t0, now_ms() + 60_000, PURPOSE).await.unwrap();
        assert!(s.is_empty(), "{receiver}: nothing recorded without the right password");
        let log = node.log();
        assert!(log.contains("camera down") && log.contains("camera=locked"), "{receiver}:\n{log}");
        for secret in [PASSWORD, WRONG] {
            assert!(!log.contains(secret), "{receiver}: the log shows a password:\n{log}");
            assert!(!st.last_error.contains(secret), "{receiver}: the status shows a password: {}", st.last_error);
        }
        node.stop();
    }
}
