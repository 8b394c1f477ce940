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
