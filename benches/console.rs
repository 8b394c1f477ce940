//! W1, W2: the web console's time to first frame, and seek to frame, in headless Chromium.
//!
//! Console: a security user in the real console of a `custos-node` recording a real RTSP
//! camera presses "Start review" on one camera: the node commits the viewing's audit
//! entry through Raft, returns the timeline, and the player loads the playlist and the
//! first verified segment (BLAKE3 checked, age decrypted) and presents a frame. Then it
//! seeks to random moments of the window and presents a frame there.
//!
//! Baseline, same run, same browser, same footage: the same hls.js playing the same
//! segments from a static file server on loopback (no TLS, no session, no audit, no
//! decryption or verification). Plays alternate between the two; percentiles over all.
//! `cargo bench --bench console` (add `-- --smoke` for a quick run).

#[path = "../tests/common/mod.rs"]
mod common;
mod report;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::browser::Browser;
use common::{now_ms, wait_for, Node, TestCamera};
use serde_json::{json, Value};

const PASSWORD: &str = "night shift on ward three";
const PURPOSE: &str = "benchmark: console playback latency";

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The page script that plays a track from `start` and resolves with the milliseconds
/// from the call to the first presented frame. `load` is the page's own way of getting
/// the footage: the console starts a review, the baseline names a playlist.
const PLAY_CONSOLE: &str = r#"
const [body, done] = arguments;
const t0 = performance.now();
(async () => {
  stopPlayers();
  const review = await api('/api/review', { body });
  const p = new Player(document.getElementById('review-player'), review);
  state.players.push(p);
  await p.tiles[0].ready;
  p.play();
  const v = p.tiles[0].video;
  v.requestVideoFrameCallback(() => done(performance.now() - t0));
})().catch((e) => done('error: ' + e.message));
"#;

const SEEK_CONSOLE: &str = r#"
const [frac, done] = arguments;
const p = window.custos.player;
const v = p.tiles[0].video;
const wall = p.from + frac * (p.to - p.from);
const target = p.tiles[0].mediaFor(wall);
if (target === null) { done('gap'); return; }
const t0 = performance.now();
const check = (now, meta) => {
  if (Math.abs(meta.mediaTime - target) < 0.5) done(performance.now() - t0);
  else v.requestVideoFrameCallback(check);
};
v.requestVideoFrameCallback(check);
p.seekTo(wall);
"#;

const BASELINE_PAGE: &str = r#"<!doctype html><html><body>
<script src="hls.light.min.js"></script><video id="v" muted playsinline></video>
<script>
window.playFrom = (done) => {
  const t0 = performance.now();
  if (window.h) { window.h.destroy(); }
  const v = document.getElementById('v');
  const h = window.h = new Hls({ maxBufferLength: 20, backBufferLength: 30 });
  h.on(Hls.Events.LEVEL_LOADED, () => {
    v.play().catch(() => {});
    v.requestVideoFrameCallback(() => done(performance.now() - t0));
  });
  h.loadSource('index.m3u8');
  h.attachMedia(v);
};
window.seekTo = (frac, done) => {
  const v = document.getElementById('v');
  const target = frac * v.duration;
  const t0 = performance.now();
  const check = (now, meta) => {
    if (Math.abs(meta.mediaTime - target) < 0.5) done(performance.now() - t0);
    else v.requestVideoFrameCallback(check);
  };
  v.requestVideoFrameCallback(check);
  v.currentTime = target;
};
</script></body></html>"#;

/// The same footage as static files: the segments fetched with the CLI's library, a VOD
/// playlist over them, the vendored hls.js, served by Python's file server on loopback.
async fn static_copy(viewer: &custos_client::Client, from: i64, to: i64) -> (tempfile::TempDir, Child, u16) {
    let dir = tempfile::tempdir().unwrap();
    let mut ts = Vec::new();
    let segs = viewer.fetch("lobby", from, to, PURPOSE, &mut ts, |_| {}).await.unwrap();
    let mut m3u = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:4\n");
    let mut at = 0usize;
    for s in &segs {
        let n = s.bytes as usize;
        std::fs::write(dir.path().join(format!("{}.ts", s.start_ms)), &ts[at..at + n]).unwrap();
        at += n;
        m3u.push_str(&format!("#EXTINF:{:.3},\n{}.ts\n", (s.end_ms - s.start_ms) as f64 / 1000.0, s.start_ms));
    }
    m3u.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(dir.path().join("index.m3u8"), m3u).unwrap();
    std::fs::write(dir.path().join("index.html"), BASELINE_PAGE).unwrap();
    let hls = concat!(env!("CARGO_MANIFEST_DIR"), "/node/src/web/assets/hls.light.min.js");
    std::fs::copy(hls, dir.path().join("hls.light.min.js")).unwrap();
    let port = common::free_port();
    let server = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    wait_for(20, "the static file server", || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
    })
    .await;
    (dir, server, port)
}

fn ms(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what}: {v}"))
}

fn main() {
    common::serve_consoles();
    let smoke = std::env::args().any(|a| a == "--smoke");
    let plays = if smoke { 4 } else { 50 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let cam = TestCamera::start(0);
        let mut node = Node::init(&[format!("lobby={}", cam.url)], 2_000);
        node.start().await;
        let web = node.web.clone().expect("the node serves the console");
        let sam_token = node.user_token("sam", "security", None, 0).await;
        let sam = node.connect(Some(&sam_token)).await.unwrap();
        let window_s = if smoke { 10 } else { 30 };
        wait_for(120, "footage to review", || async {
            let now = now_ms();
            let (segs, _) = sam.search("lobby", now - 600_000, now, PURPOSE).await.ok()?;
            (segs.last()?.end_ms - segs.first()?.start_ms >= (window_s + 4) * 1000).then_some(())
        })
        .await;
        let to = now_ms() - 1_000;
        let from = to - window_s * 1000;
        let (_dir, mut server, port) = static_copy(&sam, from, to).await;

        let b = Browser::start(&node.data().join("keys/node.pem"));
        // Sign in once; the session stays active through the plays.
        b.goto(&web);
        b.wait(20, "the sign-in page", "return !document.getElementById('view-sign-in').hidden");
        let enrolled = b.js_async(
            "const [name, code, password, done] = arguments;
             api('/api/enrol', { body: { name, code, password } }).then(() =>
               api('/api/sign-in', { body: { name, password } })).then((s) => { signedIn(s); done('ok'); })
             .catch((e) => done(e.message));",
            json!(["sam", sam_token, PASSWORD]),
        );
        assert_eq!(enrolled, "ok", "{enrolled}");
        let base_url = format!("http://127.0.0.1:{port}/index.html");
        let body = json!({"cameras": ["lobby"], "from_ms": from, "to_ms": to, "purpose": PURPOSE});
        let (mut first_ours, mut first_base, mut seek_ours, mut seek_base) = (vec![], vec![], vec![], vec![]);
        let mut rng_state = 0x9E37_79B9_7F4A_7C15u64;
        let mut frac = || {
            rng_state ^= rng_state << 13;
            rng_state ^= rng_state >> 7;
            rng_state ^= rng_state << 17;
            0.05 + 0.85 * (rng_state % 10_000) as f64 / 10_000.0
        };
        for round in 0..plays {
            // The console.
            b.goto(&web);
            b.wait(20, "the review page", "return !!(state.session && state.view === 'review')");
            first_ours.push(ms(&b.js_async(PLAY_CONSOLE, json!([body])), "console first frame"));
            std::thread::sleep(Duration::from_millis(300));
            let f = frac();
            let v = b.js_async(SEEK_CONSOLE, json!([f]));
            if v.is_number() {
                seek_ours.push(ms(&v, "console seek"));
            }
            // The baseline, same footage as static files.
            b.goto(&base_url);
            b.wait(
                20,
                "the baseline page",
                "return typeof window.playFrom === 'function' && typeof Hls === 'function'",
            );
            first_base.push(ms(&b.js_async("window.playFrom(arguments[0]);", json!([])), "baseline first frame"));
            std::thread::sleep(Duration::from_millis(300));
            seek_base.push(ms(&b.js_async("window.seekTo(arguments[0], arguments[1]);", json!([f])), "baseline seek"));
            if round % 10 == 9 {
                eprintln!("  {} plays", round + 1);
            }
        }
        let _ = server.kill();
        let _ = server.wait();
        drop(b);
        node.stop();

        let (p50, p99) = (pct(&first_ours, 50.0), pct(&first_ours, 99.0));
        let (b50, b99) = (pct(&first_base, 50.0), pct(&first_base, 99.0));
        let (s50, s99) = (pct(&seek_ours, 50.0), pct(&seek_ours, 99.0));
        let (t50, t99) = (pct(&seek_base, 50.0), pct(&seek_base, 99.0));
        println!(
            "console first frame after Start review: p50 {p50:.0} ms, p99 {p99:.0} ms over {} plays",
            first_ours.len()
        );
        println!(
            "static files, same player:              p50 {b50:.0} ms, p99 {b99:.0} ms; ratio p50 {:.2}",
            p50 / b50
        );
        println!("console seek to frame: p50 {s50:.0} ms, p99 {s99:.0} ms over {} seeks", seek_ours.len());
        println!("static files seek:     p50 {t50:.0} ms, p99 {t99:.0} ms; ratio p50 {:.2}", s50 / t50);
        let _ = std::io::stdout().flush();
        report::result(
            "W1",
            "web console: first frame after Start review (audit commit, playlist, verified segment), loopback",
            &format!(
                "p50 {p50:.0} ms, p99 {p99:.0} ms; {:.2}× the same player on static files (p50 {b50:.0} ms)",
                p50 / b50
            ),
            "p99 ≤ 500 ms",
            Some(p99 <= 500.0),
            &format!("{} plays in headless Chromium, 1 camera 640×360 H.264, 2 s segments", first_ours.len()),
        );
        report::result(
            "W2",
            &format!("web console: seek to a presented frame at a random moment of a {window_s} s review"),
            &format!("p50 {s50:.0} ms, p99 {s99:.0} ms; {:.2}× static files (p50 {t50:.0} ms)", s50 / t50),
            "p99 ≤ 300 ms",
            Some(s99 <= 300.0),
            &format!("{} seeks, same run", seek_ours.len()),
        );
    });
}
