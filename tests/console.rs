//! The web console, black-box: real `custos-node` processes recording a real RTSP camera,
//! and Debian's headless Chromium driven through chromedriver. What a person does in the
//! browser (enrol, sign in, review, approve) and what they must not be able to do (approve
//! their own request, see footage as an administrator, take footage away as a file, keep
//! a session after being disabled or after walking away).

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::{now_ms, wait_for, Node, TestCamera};
use custos_proto::v1 as pb;
use serde_json::{json, Value};

const SAM_PASSWORD: &str = "night shift on ward three";
const BOSS_PASSWORD: &str = "leadership approves with care";
const ADMIN_PASSWORD: &str = "it department keeps the lights on";

fn node_cert(node: &Node) -> std::path::PathBuf {
    node.data().join("keys/node.pem")
}

/// Sets `name`'s first password with their enrolment code (a token of theirs).
fn enrol(b: &Browser, name: &str, code: &str, password: &str) {
    b.wait(20, "the sign-in page", "return !document.getElementById('view-sign-in').hidden");
    b.js("document.querySelector('#view-sign-in details').open = true; notice('');", json!([]));
    b.type_into("#enrol-name", name);
    b.type_into("#enrol-code", code);
    b.type_into("#enrol-password", password);
    b.click("#enrol-button");
    let said = b.wait(
        20,
        "enrolment to finish",
        "const n = document.getElementById('notice'); const e = document.getElementById('enrol-error');
         return (!n.hidden && n.textContent) || e.textContent;",
    );
    assert!(said.as_str().unwrap().contains("password is set"), "enrolment of {name}: {said}");
}

/// Signs in on the page; returns the error shown, or "" when signed in.
fn try_sign_in(b: &Browser, name: &str, password: &str) -> String {
    b.js("document.getElementById('sign-in-error').textContent = '';", json!([]));
    b.type_into("#sign-in-name", name);
    b.type_into("#sign-in-password", password);
    b.click("#sign-in-button");
    let v = b.wait(
        20,
        "the sign-in answer",
        "const who = document.getElementById('who').textContent; const e = document.getElementById('sign-in-error').textContent;
         return who ? 'ok' : e;",
    );
    if v == "ok" {
        String::new()
    } else {
        v.as_str().unwrap().to_string()
    }
}

fn sign_in(b: &Browser, name: &str, password: &str) {
    let e = try_sign_in(b, name, password);
    assert!(e.is_empty(), "{name} could not sign in: {e}");
    assert!(b.text("#who").starts_with(name), "{}", b.text("#who"));
}

fn sign_out(b: &Browser) {
    b.click("#sign-out");
    b.wait(10, "the sign-in page", "return !document.getElementById('view-sign-in').hidden");
}

/// `fetch` from the page with the session's CSRF token (as the console's own scripts do).
fn fetch_as_page(b: &Browser, method: &str, path: &str, body: Option<Value>) -> Value {
    let csrf = b.js("return state.session ? state.session.csrf : '';", json!([]));
    let mut init = json!({"method": method, "headers": {"content-type": "application/json", "x-csrf-token": csrf}});
    if let Some(body) = body {
        init["body"] = json!(body.to_string());
    }
    b.fetch(path, init)
}

async fn audit(node: &Node, action: &str) -> Vec<Value> {
    let name = format!("aud-{}", action.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    let auditor = node.connect(Some(&node.user_token(&name, "auditor", None, 0).await)).await.unwrap();
    let entries = auditor.audit_log(pb::AuditLogRequest { action: action.into(), ..Default::default() }).await.unwrap();
    entries.iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect()
}

/// Waits until `camera` has footage covering the last `secs` seconds.
async fn recorded(viewer: &custos_client::Client, camera: &str, secs: i64) {
    wait_for(90, &format!("{secs} s of {camera}"), || async {
        let now = now_ms();
        let (segs, _) = viewer.search(camera, now - 600_000, now, "console test: waiting for footage").await.ok()?;
        let first = segs.first()?.start_ms;
        let last = segs.last()?.end_ms;
        (last - first >= secs * 1000).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_previews_exactly_the_requested_footage_and_decides_in_the_browser() {
    common::serve_consoles();
    let cam = TestCamera::start(0);
    let mut node = Node::init(&[format!("lobby={}", cam.url)], 2_000);
    node.start().await;
    let web = node.web.clone().expect("init --json reports web_url");
    let sam_token = node.user_token("sam", "security", None, 0).await;
    let sam = node.connect(Some(&sam_token)).await.unwrap();
    recorded(&sam, "lobby", 12).await;
    let now = now_ms();
    let (from, to) = (now - 10_000, now - 2_000);
    let export = sam
        .request_export(
            "2026-113",
            "City Police",
            "letter 2026/88",
            "fall in the lobby, police inquiry",
            &[("lobby".into(), from, to)],
        )
        .await
        .unwrap();

    let b = Browser::start(&node_cert(&node));
    b.goto(&web);
    // Sam sets a password with his enrolment code; a wrong password is refused and audited.
    enrol(&b, "sam", &sam_token, SAM_PASSWORD);
    let e = try_sign_in(&b, "sam", "not the password at all");
    assert!(e.contains("wrong name or password"), "{e}");
    let e = try_sign_in(&b, "sam", &sam_token);
    assert!(e.contains("wrong name or password"), "a token is not a password: {e}");
    sign_in(&b, "sam", SAM_PASSWORD);

    // The requester has no approve control, and the API refuses him anyway.
    assert!(!b.text("#tabs").contains("Inbox"), "{}", b.text("#tabs"));
    assert!(!b.visible("#approve-export"));
    let r = fetch_as_page(&b, "POST", &format!("/api/exports/{}/decide", export.id), Some(json!({"approve": true})));
    assert_eq!(r["status"], 403, "{r}");
    assert!(r["body"].as_str().unwrap().contains("may not export-decide"), "{r}");
    let r = fetch_as_page(&b, "POST", &format!("/api/exports/{}/review", export.id), Some(json!({})));
    assert_eq!(r["status"], 403, "{r}");
    // Without the page's CSRF token, nothing that changes state is accepted.
    let r = b.fetch(
        &format!("/api/exports/{}/decide", export.id),
        json!({"method": "POST", "headers": {"content-type": "application/json"}, "body": "{\"approve\":true}"}),
    );
    assert_eq!(r["status"], 403, "{r}");
    assert!(r["body"].as_str().unwrap().contains("CSRF"), "{r}");
    sign_out(&b);

    // The approver signs in, finds the request, watches exactly its footage, approves.
    enrol(&b, "approver", &node.approver, BOSS_PASSWORD);
    sign_in(&b, "approver", BOSS_PASSWORD);
    let row = format!("[data-export='{}']", export.id);
    b.wait(20, "the export in the inbox", &format!("return !!document.querySelector(\"{row}\")"));
    b.click(&row);
    b.wait(30, "the preview player", "return !!(window.custos && window.custos.player)");
    let tracks = b.js("return custos.player.review.tracks.map(t => [t.camera, t.from_ms, t.to_ms]);", json!([]));
    assert_eq!(tracks, json!([["lobby", from, to]]), "the preview covers exactly the requested range");
    b.click("#inbox-player .controls button");
    b.wait(30, "decoded frames", "return custos.player.tiles.every(t => t.frames() > 10)");
    let shown = b.js("return custos.player.tiles[0].wallNow();", json!([])).as_f64().unwrap() as i64;
    assert!(shown >= from - 2_000 && shown <= to, "the preview shows {shown}, outside {from}..{to}");
    b.js("document.getElementById('inbox-review').scrollIntoView();", json!([]));
    std::thread::sleep(Duration::from_millis(3000));
    let png = b.screenshot();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("console-inbox.png"), &png).unwrap();
    if std::env::var_os("CUSTOS_UPDATE_SCREENSHOTS").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/console-inbox.png"), &png).unwrap();
    }
    b.type_into("#decision-note", "letter checked; the range matches the incident");
    b.click("#approve-export");
    b.wait(20, "the decision", "const n = document.getElementById('notice'); return !n.hidden && n.textContent");
    assert!(b.text("#notice").contains("approved by approver"), "{}", b.text("#notice"));
    let shown = sam.get_export(&export.id).await.unwrap();
    assert_eq!((shown.status.as_str(), shown.decided_by.as_str()), ("approved", "approver"));

    // The audit log: the preview with its purpose, person and address; the refused
    // sign-ins; the console sign-ins themselves.
    let reviews = audit(&node, "export-review").await;
    let ok: Vec<_> = reviews.iter().filter(|e| e["outcome"] == "allowed").collect();
    assert_eq!(ok.len(), 1, "{reviews:?}");
    assert_eq!(ok[0]["user"], "approver");
    assert_eq!(ok[0]["purpose"], format!("approval review of export {}", export.id));
    assert!(ok[0]["client"].as_str().unwrap().starts_with("127.0.0.1:"), "{:?}", ok[0]);
    assert!(reviews.iter().any(|e| e["user"] == "sam" && e["outcome"] == "denied"), "{reviews:?}");
    let refused = audit(&node, "console-sign-in").await;
    assert!(refused.iter().filter(|e| e["outcome"] == "unauthenticated").count() >= 2, "{refused:?}");
    assert!(refused.iter().any(|e| e["user"] == "approver" && e["outcome"] == "ok"), "{refused:?}");

    // An auditor reads the log, verifies its chain and reads the compliance report.
    sign_out(&b);
    let ada = node.user_token("ada", "auditor", None, 0).await;
    enrol(&b, "ada", &ada, "the books must balance every day");
    sign_in(&b, "ada", "the books must balance every day");
    b.wait(20, "the audit log", "return document.querySelectorAll('#audit-entries tr').length > 5");
    assert!(b.text("#audit-entries").contains("approval review of export"), "{}", b.text("#audit-entries"));
    b.click("#audit-verify");
    let v = b.wait(20, "the chain check", "return document.getElementById('audit-verified').textContent");
    assert!(v.as_str().unwrap().starts_with("Intact:"), "{v}");
    b.js("show('report');", json!([]));
    b.wait(
        30,
        "the compliance report",
        "return document.getElementById('report-cameras').textContent.includes('lobby')",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_cameras_play_in_step_and_no_console_url_hands_out_footage() {
    common::serve_consoles();
    let cam = TestCamera::start(0);
    let cams = ["lobby", "ward", "door", "yard"];
    let mut node = Node::init(&cams.iter().map(|c| format!("{c}={}", cam.url)).collect::<Vec<_>>(), 2_000);
    node.start().await;
    let web = node.web.clone().unwrap();
    let sam_token = node.user_token("sam", "security", None, 0).await;
    let sam = node.connect(Some(&sam_token)).await.unwrap();
    for c in cams {
        recorded(&sam, c, 16).await;
    }

    let b = Browser::start(&node_cert(&node));
    b.goto(&web);
    enrol(&b, "sam", &sam_token, SAM_PASSWORD);
    sign_in(&b, "sam", SAM_PASSWORD);
    b.wait(20, "the camera list", "return document.querySelectorAll('#review-cameras input').length === 4");
    b.js(
        "for (const i of document.querySelectorAll('#review-cameras input')) i.checked = true;
         document.getElementById('review-from').value = toLocalInput(Date.now() - 20000);
         document.getElementById('review-to').value = toLocalInput(Date.now() - 1000);",
        json!([]),
    );
    b.type_into("#review-purpose", "incident 2026-114: visitor followed through four areas");
    b.click("#review-start");
    b.wait(
        30,
        "the 2×2 player",
        "return !!(window.custos && window.custos.player && custos.player.tiles.length === 4)",
    );
    b.click("#review-player .controls button");
    b.wait(40, "four cameras decoding", "return custos.player.tiles.every(t => t.frames() > 10 && !t.video.paused)");
    let spread = |b: &Browser| -> (f64, Vec<f64>) {
        let v = b.js("return custos.player.tiles.map(t => t.wallNow());", json!([]));
        let t: Vec<f64> = v.as_array().unwrap().iter().map(|x| x.as_f64().expect("every tile shows a time")).collect();
        let (lo, hi) = t.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        (hi - lo, t)
    };
    std::thread::sleep(Duration::from_secs(3));
    let (s, times) = spread(&b);
    assert!(s <= 500.0, "the four cameras are {s} ms apart while playing: {times:?}");
    // Seeking moves all four together.
    let target =
        b.js("const p = custos.player; p.seekTo(p.from + 6000); return p.from + 6000;", json!([])).as_f64().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (s, times) = spread(&b);
    assert!(s <= 500.0, "after a seek the cameras are {s} ms apart: {times:?}");
    assert!(times.iter().all(|t| (*t - target).abs() < 4_000.0), "after seeking to {target}: {times:?}");

    // What was found becomes an export request for an approver, from the same page.
    b.type_into("#keep-case", "2026-114");
    b.type_into("#export-org", "City Police Station 3");
    b.type_into("#export-letter", "L-2026-114");
    b.type_into("#export-purpose", "evidence for case 2026-114");
    b.click("#keep-request-export");
    let said = b.wait(20, "the export request", "return document.getElementById('keep-result').textContent");
    assert!(said.as_str().unwrap().contains("requested"), "{said}");
    let asked = sam.list_exports().await.unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].ranges.len(), 4, "one range per reviewed camera");

    // Each camera's viewing was audited with the purpose, the person and the address.
    let views = audit(&node, "view").await;
    for c in cams {
        let e =
            views.iter().find(|e| e["cameras"] == json!([c])).unwrap_or_else(|| panic!("no view of {c}: {views:?}"));
        assert_eq!(e["user"], "sam");
        assert_eq!(e["purpose"], "incident 2026-114: visitor followed through four areas");
        assert!(e["client"].as_str().unwrap().starts_with("127.0.0.1:"), "{e}");
    }

    // No console URL hands out footage as a file: the media the player loads needs the
    // page's CSRF header, so a link, a new tab or a download manager gets an error.
    let playlist = b.js("return custos.player.review.tracks[0].playlist;", json!([])).as_str().unwrap().to_string();
    let m3u = fetch_as_page(&b, "GET", &playlist, None);
    assert_eq!(m3u["status"], 200, "{m3u}");
    let seg = m3u["body"].as_str().unwrap().lines().find(|l| l.ends_with(".ts")).unwrap().to_string();
    let seg_url = format!("{}{seg}", playlist.trim_end_matches("index.m3u8"));
    let with_header = fetch_as_page(&b, "GET", &seg_url, None);
    assert_eq!((with_header["status"].as_u64(), with_header["type"].as_str()), (Some(200), Some("video/mp2t")));
    assert_eq!(with_header["disposition"], "", "never an attachment");
    let plain = b.fetch(&seg_url, json!({}));
    assert_eq!(plain["status"], 403, "{plain}");
    let mut urls = vec![
        "/".to_string(),
        "/static/app.js".into(),
        "/static/style.css".into(),
        "/static/hls.light.min.js".into(),
        "/api/session".into(),
        "/api/status".into(),
        "/api/cameras".into(),
        "/api/exports".into(),
        "/api/holds".into(),
        "/api/alarms".into(),
        "/api/changes".into(),
        "/api/audit".into(),
        "/api/report".into(),
        "/api/users".into(),
        "/media".into(),
        "/download".into(),
        playlist.clone(),
        seg_url.clone(),
    ];
    urls.push(format!("/api/exports/{}/package", "E-000001"));
    for u in &urls {
        let r = b.fetch(u, json!({}));
        let ty = r["type"].as_str().unwrap();
        assert!(
            !ty.starts_with("video/") && !ty.contains("octet-stream") && !ty.contains("mpegurl"),
            "{u} answered a plain request with {ty}"
        );
        assert!(!r["disposition"].as_str().unwrap().contains("attachment"), "{u}: {r}");
    }
    // A tab opened on a segment's address shows an error, not video.
    b.goto(&format!("{}{}", web.trim_end_matches('/'), seg_url));
    let ty = b.js("return document.contentType;", json!([]));
    assert_eq!(ty, "application/json", "a segment opened in a tab");
    assert!(b.text("body").contains("CSRF"), "{}", b.text("body"));
    let html = b.fetch("/", json!({}))["body"].as_str().unwrap().to_string();
    assert!(!html.contains("download=") && !html.contains("/media/"), "the page offers no footage link");

    // Disabling sam ends his session at once: the page returns to the sign-in form.
    b.goto(&web);
    b.wait(20, "sam's session again", "return document.getElementById('who').textContent.startsWith('sam')");
    // A patrol from the operations page.
    b.js("show('operations');", json!([]));
    b.wait(20, "the patrol form", "return !document.getElementById('patrol-form').hidden");
    b.type_into("#patrol-notes", "four areas checked on screen");
    b.click("#patrol-form button");
    let said = b.wait(20, "the patrol", "return document.getElementById('ops-result').textContent");
    assert!(said.as_str().unwrap().starts_with("Patrol"), "{said}");
    assert!(b.text("#ops-nodes").contains("GiB"), "{}", b.text("#ops-nodes"));

    let admin = node.connect(Some(&node.token)).await.unwrap();
    admin.disable_user("sam").await.unwrap();
    b.js("show('review');", json!([]));
    b.wait(20, "the sign-in page", "return !document.getElementById('view-sign-in').hidden");
    assert!(b.text("#notice").contains("disabled"), "{}", b.text("#notice"));
    let r = b.fetch(&seg_url, json!({"headers": {"x-csrf-token": "anything"}}));
    assert_eq!(r["status"], 401, "{r}");

    // An administrator sees no footage: no review, no player, and the API refuses.
    enrol(&b, "admin", &node.token, ADMIN_PASSWORD);
    sign_in(&b, "admin", ADMIN_PASSWORD);
    b.wait(20, "the administration page", "return document.querySelectorAll('#admin-users tr').length > 1");
    assert!(!b.text("#tabs").contains("Review"), "{}", b.text("#tabs"));
    assert_eq!(b.js("return document.querySelectorAll('video').length;", json!([])), 0);
    let now = now_ms();
    let r = fetch_as_page(
        &b,
        "POST",
        "/api/review",
        Some(json!({"cameras": ["lobby"], "from_ms": now - 10_000, "to_ms": now, "purpose": "curious administrator"})),
    );
    assert_eq!(r["status"], 403, "{r}");
    assert!(r["body"].as_str().unwrap().contains("role admin may not view"), "{r}");
    let r = fetch_as_page(&b, "GET", &seg_url, None);
    assert_eq!(r["status"], 404, "another session's review is not the admin's: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_repeated_wrong_passwords_lock_the_door() {
    common::serve_consoles();
    let mut node = Node::init(&[], 2_000);
    node.configure("web_idle_timeout_s = 3");
    node.start().await;
    let web = node.web.clone().unwrap();
    // A page on another site cannot sign a browser in (or enrol it) under a name of its
    // choosing: the console refuses writes whose Origin is another site.
    let url = format!("{web}api/enrol");
    let body = json!({"name": "admin", "code": node.token, "password": ADMIN_PASSWORD}).to_string();
    // The console starts serving once the node is ready; ask until it answers.
    let code = wait_for(30, "the console to answer", || async {
        let out = std::process::Command::new("curl")
            .args(["-s", "-S", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(node.data().join("keys/ca.pem"))
            .args(["-H", "origin: https://evil.example", "-H", "content-type: application/json", "-d", &body, &url])
            .output()
            .expect("curl (ops/setup.sh installs it)");
        let code = String::from_utf8_lossy(&out.stdout).to_string();
        (code != "000").then_some(code)
    })
    .await;
    assert_eq!(code, "403", "a cross-site enrolment");
    let b = Browser::start(&node_cert(&node));
    b.goto(&web);
    enrol(&b, "admin", &node.token, ADMIN_PASSWORD);
    sign_in(&b, "admin", ADMIN_PASSWORD);
    std::thread::sleep(Duration::from_secs(5));
    b.js("show('admin');", json!([]));
    b.wait(20, "the sign-in page", "return !document.getElementById('view-sign-in').hidden");
    assert!(b.text("#notice").contains("without activity"), "{}", b.text("#notice"));

    // The enrolment code works once: a password, once set, is changed only by a reset.
    b.js("document.querySelector('#view-sign-in details').open = true;", json!([]));
    b.type_into("#enrol-name", "admin");
    b.type_into("#enrol-code", &node.token);
    b.type_into("#enrol-password", "another secret for the it office");
    b.click("#enrol-button");
    let e = b.wait(20, "the refusal", "return document.getElementById('enrol-error').textContent");
    assert!(e.as_str().unwrap().contains("reset-password"), "{e}");

    // A forgotten password: an administrator asks for a reset, an approver accepts it and
    // receives the new enrolment code; the old password stops working at once.
    sign_in(&b, "admin", ADMIN_PASSWORD);
    let admin = node.connect(Some(&node.token)).await.unwrap();
    let asked = admin.reset_password("admin").await.unwrap();
    assert!(asked.change_id != 0 && asked.token.is_empty(), "a reset waits for an approver: {asked:?}");
    let code = node.approve(asked.change_id).await.token.expect("the approver receives the enrolment code").token;
    b.js("show('admin');", json!([]));
    b.wait(20, "the sign-in page", "return !document.getElementById('view-sign-in').hidden");
    let e = try_sign_in(&b, "admin", ADMIN_PASSWORD);
    assert!(e.contains("wrong name or password"), "the old password after a reset: {e}");
    enrol(&b, "admin", &code, "a new secret for the it office");
    sign_in(&b, "admin", "a new secret for the it office");
    sign_out(&b);

    // Five wrong passwords from one address (the old one above was the first), then even
    // the right one waits.
    for _ in 0..4 {
        assert!(try_sign_in(&b, "admin", "wrong wrong wrong wrong").contains("wrong name or password"));
    }
    let e = try_sign_in(&b, "admin", "a new secret for the it office");
    assert!(e.contains("too many failed sign-ins"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_to_record_the_viewing_nothing_plays() {
    common::serve_consoles();
    let cam = TestCamera::start(0);
    let (mut n1, mut n2, mut n3) = common::three_node_cluster().await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    admin.add_camera("lobby", &cam.url, "").await.unwrap();
    let sam_token = n1.user_token("sam", "security", None, 0).await;
    let sam = n1.connect(Some(&sam_token)).await.unwrap();
    recorded(&sam, "lobby", 6).await;
    let web = n1.web.clone().unwrap();
    let b = Browser::start(&node_cert(&n1));
    b.goto(&web);
    enrol(&b, "sam", &sam_token, SAM_PASSWORD);
    sign_in(&b, "sam", SAM_PASSWORD);
    b.wait(20, "the camera list", "return document.querySelectorAll('#review-cameras input').length === 1");
    n2.stop();
    n3.stop();
    b.js(
        "document.querySelector('#review-cameras input').checked = true;
         document.getElementById('review-from').value = toLocalInput(Date.now() - 30000);
         document.getElementById('review-to').value = toLocalInput(Date.now());",
        json!([]),
    );
    b.type_into("#review-purpose", "incident 2026-115: checking the lobby door");
    b.click("#review-start");
    let e = b.wait(60, "the refusal", "return document.getElementById('review-error').textContent");
    let e = e.as_str().unwrap();
    assert!(e.contains("audit") || e.contains("leader"), "{e}");
    assert_eq!(b.js("return document.querySelectorAll('video').length;", json!([])), 0, "nothing plays");
    drop(admin);
    n1.stop();
}

/// A camera whose codec the browser cannot decode (H.265 in Chromium without a hardware
/// decoder) is said so plainly on its tile, which shows the first picture of the segment
/// at the shared clock's time instead, made by the node from the verified segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_the_browser_cannot_decode_is_shown_as_stills() {
    common::serve_consoles();
    let cam = TestCamera::start_with(0, &["--codec", "h265"]);
    let mut node = Node::init(&[format!("dome={}", cam.url)], 2_000);
    node.start().await;
    let web = node.web.clone().unwrap();
    let sam_token = node.user_token("sam", "security", None, 0).await;
    let sam = node.connect(Some(&sam_token)).await.unwrap();
    recorded(&sam, "dome", 8).await;
    let b = Browser::start(&node_cert(&node));
    b.goto(&web);
    enrol(&b, "sam", &sam_token, SAM_PASSWORD);
    sign_in(&b, "sam", SAM_PASSWORD);
    b.wait(20, "the camera list", "return document.querySelectorAll('#review-cameras input').length === 1");
    b.js(
        "document.querySelector('#review-cameras input').checked = true;
         document.getElementById('review-from').value = toLocalInput(Date.now() - 12000);
         document.getElementById('review-to').value = toLocalInput(Date.now() - 1000);",
        json!([]),
    );
    b.type_into("#review-purpose", "incident 2026-116: the dome over the car park");
    b.click("#review-start");
    b.wait(30, "the player", "return !!(window.custos && window.custos.player)");
    let hevc = b.js("return MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L93.B0\"');", json!([]));
    if hevc == json!(true) {
        // This browser decodes H.265 itself: the camera plays like any other.
        b.click("#review-player .controls button");
        b.wait(30, "decoded frames", "return custos.player.tiles[0].frames() > 5");
        return;
    }
    let w = b.wait(
        30,
        "a still in place of the video",
        "const t = custos.player.tiles[0]; return t.stills && t.img.complete && t.img.naturalWidth;",
    );
    assert_eq!(w, 640, "the node's still is 640 pixels wide");
    assert!(b.text(".tile .caption").contains("cannot decode"), "{}", b.text(".tile .caption"));
    // Stills advance with the shared clock, one per segment.
    let first = b.js("return custos.player.tiles[0].shown;", json!([]));
    b.click("#review-player .controls button");
    b.wait(20, "the next segment's still", &format!("return custos.player.tiles[0].shown !== {first};"));
    // A still is footage too: not without the page's CSRF header.
    let playlist = b.js("return custos.player.review.tracks[0].playlist;", json!([])).as_str().unwrap().to_string();
    let still =
        format!("{}{}", playlist.trim_end_matches("index.m3u8"), first.as_str().unwrap().replace(".ts", ".jpg"));
    assert_eq!(b.fetch(&still, json!({}))["status"], 403);
    assert_eq!(fetch_as_page(&b, "GET", &still, None)["type"], "image/jpeg");
}
