//! Harness for black-box tests: real `custos-node` processes, a real RTSP camera
//! (`custos-test-camera`), and the `custos_client` library talking gRPC to them.
#![allow(dead_code)]

pub mod browser;
mod net;
mod servers;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use net::{Host, TestNet};
#[allow(unused_imports)]
pub use servers::{moto_python, TestCamera, TestMoto, TestS3, S3_KEY};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custos_client::{Client, Transport};

/// Path of a binary built in the same profile as this test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target profile dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built; run the tests through ops/test.sh or `cargo nextest run --workspace`",
        p.display()
    );
    p
}

/// `GET /metrics` from a node's metrics address, the whole HTTP response as text.
pub fn scrape_metrics(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// Three nodes on loopback in campuses east (founder, `n1`), west and north, started and
/// waited for until all three are voters that answer and a leader is known.
pub async fn three_node_cluster() -> (Node, Node, Node) {
    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    n1.start().await;
    let mut n2 = Node::join(&n1, "west").await;
    n2.start().await;
    let mut n3 = Node::join(&n2, "north").await;
    n3.start().await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    wait_for(60, "three voters, all up", || async {
        let r = admin.list_nodes().await.ok()?;
        (r.nodes.len() == 3 && r.nodes.iter().all(|n| n.health == "up" && n.raft_role != "learner") && r.leader != 0)
            .then_some(())
    })
    .await;
    (n1, n2, n3)
}

/// Every file under `dir`, at any depth.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A free TCP port on loopback, never the same twice in one test process: the kernel may hand a just-released
/// port out again, and a node given one port for two listeners refuses to start.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

static CONSOLES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Nodes made after this call serve the web console (the console's own tests and
/// benchmark). Other tests' nodes serve none: a node restarted by a test could otherwise
/// find its console port taken meanwhile by another test's process, and fail to start.
pub fn serve_consoles() {
    CONSOLES.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// `--web-listen`'s value for a new node on `host`.
fn web_listen(host: &Host) -> String {
    if CONSOLES.load(std::sync::atomic::Ordering::SeqCst) {
        format!("{}:{}", host.ip, free_port())
    } else {
        "off".into()
    }
}

/// A node's data directory and, while running, its process.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub token: String,
    /// The founding approver's token (`approver_token` from `init --json`): the second
    /// person the change queue needs.
    pub approver: String,
    /// The cluster CA the node's certificate is verified against.
    pub ca_file: PathBuf,
    /// `host:port` of the node's Prometheus endpoint.
    pub metrics: String,
    /// The web console's URL (`https://host:port/`), if the node serves one.
    pub web: Option<String>,
    child: Option<Child>,
    starts: u32,
    /// Extra environment for the node process (credentials, say).
    pub env: Vec<(String, String)>,
    pub host: Host,
    /// The data directory is a tmpfs of this many MiB (a disk that can really fill).
    pub tmpfs_mib: Option<u64>,
}

impl Node {
    /// Runs `custos-node init` with the given seed cameras (`id=source`). Test nodes accept
    /// `file://` and `test://` sources (`--allow-test-sources`); `configure` can say
    /// `allow_test_sources = false`.
    pub fn init(cameras: &[String], segment_target_ms: u64) -> Node {
        Self::init_with(cameras, segment_target_ms, &[])
    }

    /// `init` with extra flags (e.g. `--campus east`).
    pub fn init_with(cameras: &[String], segment_target_ms: u64, extra: &[&str]) -> Node {
        Self::init_on(Host::loopback(), None, cameras, segment_target_ms, extra)
    }

    /// `init` on `host`, with the data directory on a tmpfs of `tmpfs_mib` if given.
    pub fn init_on(
        host: Host,
        tmpfs_mib: Option<u64>,
        cameras: &[String],
        segment_target_ms: u64,
        extra: &[&str],
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        mount_data(dir.path(), tmpfs_mib);
        let port = free_port();
        let metrics = format!("{}:{}", host.ip, free_port());
        let web = web_listen(&host);
        let mut cmd = host.command(&bin("custos-node"));
        // Tests record test patterns and files; a deployed node refuses them unless told.
        cmd.arg("init").arg("--data").arg(dir.path().join("data")).args([
            "--listen",
            &format!("{}:{port}", host.ip),
            "--metrics-listen",
            &metrics,
            "--web-listen",
            &web,
            "--segment-target-ms",
            &segment_target_ms.to_string(),
            "--allow-test-sources",
            "--json",
        ]);
        cmd.args(extra);
        for c in cameras {
            cmd.args(["--camera", c]);
        }
        let out = cmd.output().expect("custos-node init");
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("init --json prints JSON");
        Node {
            dir,
            addr: format!("{}:{port}", host.ip),
            token: v["admin_token"].as_str().unwrap().to_string(),
            approver: v["approver_token"].as_str().expect("init --json reports the approver's token").to_string(),
            ca_file: PathBuf::from(v["ca_file"].as_str().expect("init --json reports the CA file")),
            metrics: v["metrics_listen"].as_str().expect("init --json reports the metrics address").to_string(),
            web: v["web_url"].as_str().map(str::to_string),
            child: None,
            starts: 0,
            env: vec![],
            host,
            tmpfs_mib,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A node whose data directory `dir/data` another command made (`custos-node
    /// restore`); `token` is a user token the restored catalog knows.
    pub fn adopt(dir: tempfile::TempDir, addr: String, token: String, ca_file: PathBuf, metrics: String) -> Node {
        Node {
            dir,
            addr,
            token,
            approver: String::new(),
            ca_file,
            metrics,
            web: None,
            child: None,
            starts: 0,
            env: vec![],
            host: Host::loopback(),
            tmpfs_mib: None,
        }
    }

    /// Runs `custos-node join` against `via` (any running member) with a fresh join
    /// token, in campus `campus`. The new node shares the cluster's admin token.
    pub async fn join(via: &Node, campus: &str) -> Node {
        Self::join_on(Host::loopback(), None, via, campus).await
    }

    /// `join` from `host`, with the data directory on a tmpfs of `tmpfs_mib` if given.
    pub async fn join_on(host: Host, tmpfs_mib: Option<u64>, via: &Node, campus: &str) -> Node {
        let admin = via.connect(Some(&via.token)).await.unwrap();
        let t = admin.join_token(0).await.unwrap();
        if t.change_id != 0 {
            via.approve(t.change_id).await;
        }
        let token = t.token;
        let dir = tempfile::tempdir().unwrap();
        mount_data(dir.path(), tmpfs_mib);
        let port = free_port();
        let metrics = format!("{}:{}", host.ip, free_port());
        let web = web_listen(&host);
        let out = host
            .command(&bin("custos-node"))
            .arg("join")
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--campus", campus, "--listen", &format!("{}:{port}", host.ip), "--cluster", &via.addr])
            .args(["--metrics-listen", &metrics, "--web-listen", &web, "--allow-test-sources"])
            .args(["--token", &token, "--json"])
            .output()
            .expect("custos-node join");
        assert!(out.status.success(), "join failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("join --json prints JSON");
        Node {
            dir,
            addr: format!("{}:{port}", host.ip),
            token: via.token.clone(),
            approver: via.approver.clone(),
            ca_file: PathBuf::from(v["ca_file"].as_str().unwrap()),
            metrics,
            web: v["web_url"].as_str().map(str::to_string),
            child: None,
            starts: 0,
            env: vec![],
            host,
            tmpfs_mib,
        }
    }

    /// Appends settings to the node's config file.
    pub fn configure(&self, toml_lines: &str) {
        use std::io::Write;
        let p = self.data().join("custos.toml");
        let keys: Vec<&str> = toml_lines.lines().filter_map(|l| l.split('=').next()).map(str::trim).collect();
        let text: String = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .filter(|l| !keys.iter().any(|k| l.split('=').next().map(str::trim) == Some(k)))
            .map(|l| format!("{l}\n"))
            .collect();
        // Top-level keys must come before the first table.
        let (head, tables) = match text.find("\n[") {
            Some(i) => text.split_at(i + 1),
            None => (text.as_str(), ""),
        };
        let mut f = std::fs::File::create(&p).unwrap();
        write!(f, "{head}{toml_lines}\n{tables}").unwrap();
    }

    /// Appends TOML (a table such as `[backup]`) at the end of the node's config file.
    pub fn append_config(&self, toml: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(self.data().join("custos.toml")).unwrap();
        writeln!(f, "\n{toml}").unwrap();
    }

    /// The node's id from its config file.
    pub fn node_id(&self) -> u64 {
        let text = std::fs::read_to_string(self.data().join("custos.toml")).unwrap();
        text.lines().find_map(|l| l.strip_prefix("node_id = ")).unwrap().trim().parse().unwrap()
    }

    /// Sends a signal to the running node (SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, sig: i32) {
        let c = self.child.as_ref().expect("node is running");
        // SAFETY: kill(2) on a child we own; no memory is touched.
        unsafe { libc::kill(c.id() as i32, sig) };
    }

    /// Runs the `custos` CLI against this node as the holder of `token`.
    pub fn cli(&self, token: &str, args: &[&str]) -> std::process::Output {
        Command::new(bin("custos"))
            .args(["--addr", &self.addr, "--token", token, "--ca"])
            .arg(&self.ca_file)
            .args(args)
            .output()
            .expect("run custos")
    }

    /// Where this node keeps blob `content_hash`.
    pub fn blob_path(&self, content_hash: &[u8]) -> PathBuf {
        let h = hex::encode(content_hash);
        self.data().join("blobs").join(&h[..2]).join(&h[2..4]).join(&h)
    }

    /// Makes the scrubber run without a rate limit, one pass a second, so injected
    /// damage is found soon.
    pub fn fast_scrub(&self) {
        let p = self.data().join("custos.toml");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("[scrub]"), "init writes the [scrub] section");
        let text = text
            .replace("bytes_per_s = 33554432", "bytes_per_s = 1000000000")
            .replace("pass_pause_s = 3600", "pass_pause_s = 1");
        std::fs::write(&p, text).unwrap();
    }

    /// True if this node holds blob `content_hash` on disk.
    pub fn holds_blob(&self, content_hash: &[u8]) -> bool {
        self.blob(content_hash).is_some()
    }

    /// This node's sealed blob `content_hash`, if it holds one.
    pub fn blob(&self, content_hash: &[u8]) -> Option<Vec<u8>> {
        std::fs::read(self.blob_path(content_hash)).ok()
    }

    /// Starts the node and waits until its API answers.
    pub async fn start(&mut self) -> Client {
        let mut cmd = self.host.command(&bin("custos-node"));
        cmd.arg("run");
        self.start_cmd(cmd).await
    }

    /// Starts the node as `custos-sim-node`, whose clock is the system's plus the offset
    /// (ms) written in `clock_file`.
    pub async fn start_sim(&mut self, clock_file: &Path) -> Client {
        let mut cmd = self.host.command(&bin("custos-sim-node"));
        cmd.env("CUSTOS_SIM_CLOCK", clock_file);
        self.start_cmd(cmd).await
    }

    async fn start_cmd(&mut self, mut cmd: Command) -> Client {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("node-{}.log", self.starts))).unwrap();
        let child = cmd
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("--data")
            .arg(self.data())
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn custos-node");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = self.connect(Some(&self.token)).await {
                if c.status().await.is_ok() {
                    return c;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("custos-node exited with {status} at start:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "custos-node did not answer within 30 s:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Connects over TLS, verifying the node against its cluster CA.
    pub async fn connect(&self, token: Option<&str>) -> Result<Client, custos_client::ClientError> {
        let ca_pem = std::fs::read(&self.ca_file).unwrap();
        Client::connect(&self.addr, token, &Transport::Tls { ca_pem }).await
    }

    /// Creates a user with `role` through the admin API and connects as them.
    pub async fn user(&self, name: &str, role: &str, case: Option<&str>) -> Client {
        let token = self.user_token(name, role, case, 0).await;
        self.connect(Some(&token)).await.unwrap()
    }

    /// Creates a user as the administrator, with the approver accepting the change where
    /// the role needs one; returns their token.
    pub async fn user_token(&self, name: &str, role: &str, case: Option<&str>, ttl_days: u32) -> String {
        let admin = self.connect(Some(&self.token)).await.unwrap();
        let t = admin.add_user(name, role, case, ttl_days).await.unwrap_or_else(|e| panic!("adding {name}: {e}"));
        if t.change_id == 0 {
            return t.token;
        }
        self.approve(t.change_id).await.token.expect("an accepted user-add returns the token").token
    }

    /// The founding approver accepts change `id`.
    pub async fn approve(&self, id: u64) -> custos_proto::v1::ChangeDecided {
        assert!(!self.approver.is_empty(), "this test node has no approver token");
        let approver = self.connect(Some(&self.approver)).await.unwrap();
        approver.decide_change(id, true, "").await.unwrap_or_else(|e| panic!("approving change {id}: {e}"))
    }

    /// Runs a request that may be queued (`Some(change id)`), approving it if it is.
    pub async fn approved<T>(&self, r: Result<Option<u64>, T>) -> Result<(), T> {
        if let Some(id) = r? {
            self.approve(id).await;
        }
        Ok(())
    }

    /// Confirms, through the change queue (the founding administrator asks, the founding
    /// approver accepts), the clock jump of each node in `ids` once the alarm `clock-jump`
    /// names it. A simulated clock moved days forward while the nodes ran is a clock jump,
    /// which stops expiry until it is confirmed.
    pub async fn confirm_clock_jumps(&self, ids: &[u64]) {
        let admin = self.connect(Some(&self.token)).await.unwrap();
        for id in ids {
            let subject = format!("node {id}");
            wait_for(30, &format!("clock-jump naming {subject}"), || async {
                let a = admin.list_alarms(false).await.ok()?;
                a.iter().any(|a| a.kind == "clock-jump" && a.subject == subject).then_some(())
            })
            .await;
            let change = admin.confirm_clock(*id).await.unwrap_or_else(|e| panic!("confirm-clock {id}: {e}"));
            self.approve(change).await;
        }
    }

    /// Starts the node and connects as a new security user (who may view footage).
    pub async fn start_as_security(&mut self) -> Client {
        self.start().await;
        let n = self.starts;
        self.user(&format!("guard{n}"), "security", None).await
    }

    /// The node's latest log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{}.log", self.starts))).unwrap_or_default()
    }

    /// If the node's process has ended on its own, how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(status)
    }

    /// Waits up to `secs` for the node's process to end on its own.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGINT, then waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a child we own; no memory is touched.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let status = c.wait().unwrap();
            assert!(status.success(), "custos-node did not stop cleanly ({status}):\n{}", self.log());
        }
    }
}

impl Node {
    /// Fills the node's tmpfs data directory until `leave` bytes are free (a file called
    /// `filler`); [`drain_disk`](Self::drain_disk) removes it.
    pub fn fill_disk(&self, leave: u64) {
        assert!(self.tmpfs_mib.is_some(), "fill_disk needs a node on a tmpfs");
        let (free, _) = custos_node::cluster::health::disk_usage(&self.data()).unwrap();
        let f = std::fs::OpenOptions::new().create(true).append(true).open(self.data().join("filler")).unwrap();
        // tmpfs allocates on write; set_len alone would leave a hole.
        let mut w = std::io::BufWriter::new(f);
        let chunk = vec![0x5Au8; 1 << 20];
        let mut left = free.saturating_sub(leave);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if std::io::Write::write_all(&mut w, &chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = std::io::Write::flush(&mut w);
    }

    pub fn drain_disk(&self) {
        let _ = std::fs::remove_file(self.data().join("filler"));
    }
}

/// True if this process may mount a tmpfs (root with CAP_SYS_ADMIN); says why not.
pub fn tmpfs_available() -> bool {
    let d = tempfile::tempdir().unwrap();
    match Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "custos-probe"]).arg(d.path()).output() {
        Ok(o) if o.status.success() => {
            let _ = Command::new("umount").arg(d.path()).output();
            true
        }
        Ok(o) => {
            eprintln!("cannot mount a tmpfs ({}): full-disk faults skipped", String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            eprintln!("no `mount` command ({e}): full-disk faults skipped");
            false
        }
    }
}

/// Mounts a tmpfs of `mib` MiB at `dir/data` when asked.
fn mount_data(dir: &Path, mib: Option<u64>) {
    let Some(mib) = mib else { return };
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "custos-test"])
        .arg(&data)
        .output()
        .expect("run mount");
    assert!(out.status.success(), "mount tmpfs (needs root): {}", String::from_utf8_lossy(&out.stderr));
}

/// Lines of a node's log a failing test prints.
const LOG_TAIL_ON_FAILURE: usize = 60;

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            // A failing test shows what each of its nodes did last, so a failure seen
            // once in CI can be read without reproducing it.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(LOG_TAIL_ON_FAILURE).collect();
            eprintln!(
                "--- node in {} (start {}), last {} log lines:",
                self.dir.path().display(),
                self.starts,
                tail.len()
            );
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
        if self.tmpfs_mib.is_some() {
            let _ = Command::new("umount").arg("-l").arg(self.data()).output();
        }
    }
}

/// Polls `f` every 200 ms until it returns `Some`, or panics after `secs`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wall-clock now in ms.
pub fn now_ms() -> i64 {
    custos_client::time::now_ms()
}

/// Demuxes and parses an MPEG-TS file with GStreamer (tsdemux ! h264parse) and returns
/// (frames, first PTS, last PTS) in nanoseconds.
pub fn demux_h264(path: &Path) -> (usize, u64, u64) {
    demux(path, "h264parse")
}

/// Like [`demux_h264`] with another parser (`h265parse`).
pub fn demux(path: &Path, parser: &str) -> (usize, u64, u64) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let desc = format!("filesrc location={} ! tsdemux ! {parser} ! appsink name=sink sync=false", path.display());
    let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gstreamer_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut frames, mut first, mut last) = (0usize, u64::MAX, 0u64);
    while let Ok(sample) = sink.pull_sample() {
        let pts = sample.buffer().unwrap().pts().expect("every demuxed frame has a PTS").nseconds();
        frames += 1;
        first = first.min(pts);
        last = last.max(pts);
    }
    let bus = pipeline.bus().unwrap();
    let err = bus.pop_filtered(&[gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(err.is_none(), "GStreamer could not demux {}: {err:?}", path.display());
    (frames, first, last)
}

/// What ffprobe (FFmpeg's, another implementation than the GStreamer that wrote the
/// file) reads of a media file's first video stream: its codec name and the file's
/// duration in milliseconds.
pub fn ffprobe(path: &Path) -> (String, i64) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (ops/setup.sh installs ffmpeg)");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codec = v["streams"][0]["codec_name"].as_str().unwrap_or_default().to_string();
    let secs: f64 = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(-1.0);
    (codec, (secs * 1000.0).round() as i64)
}

/// The text of a PDF, as `pdftotext` (poppler) extracts it.
pub fn pdftotext(path: &Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext runs (ops/setup.sh installs poppler-utils)");
    assert!(out.status.success(), "pdftotext {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// An in-process write path (keys, blob store, pending records) under `dir`, for tests
/// that drive the recorder without a node process.
pub fn write_path(dir: &Path) -> custos_node::recorder::SealContext {
    use std::sync::Arc;
    let id = custos_node::segment::seal::generate_identity();
    let keys = custos_node::segment::Keys::new(std::slice::from_ref(&id.recipient), &id.secret).unwrap();
    let (store, _) = custos_node::segment::BlobStore::open(&dir.join("blobs")).unwrap();
    let pending = custos_node::segment::pending::PendingDir::open(&dir.join("pending")).unwrap();
    custos_node::recorder::SealContext {
        node_id: 1,
        keys: Arc::new(keys),
        store: Arc::new(store),
        pending: Arc::new(pending),
    }
}

/// The node's gRPC services over an in-process Raft group and write path.
pub fn services(
    meta: &custos_node::meta::Meta,
    ctx: &custos_node::recorder::SealContext,
    clock: custos_node::clock::SharedClock,
) -> custos_node::server::Services {
    let health = custos_node::cluster::health::Health::new(meta.node_id, &std::env::temp_dir());
    let cluster = custos_node::server::ClusterInfo {
        campus: "main".into(),
        pki: None,
        archive_recipients: vec![],
        archive_identity: String::new(),
        segment_target_ms: 4000,
        signing: None,
        signing_pkcs8: None,
    };
    let replicator = custos_node::cluster::replicate::Replicator::alone(meta.clone(), health);
    custos_node::server::Services::new(meta.clone(), (ctx.store.clone(), ctx.keys.clone()), clock, replicator, cluster)
}

/// Commits a user with a token valid until `expires_ms`; returns the token.
pub async fn add_user(
    meta: &custos_node::meta::Meta,
    name: &str,
    role: custos_node::access::Role,
    expires_ms: i64,
) -> String {
    use custos_node::meta::{Command, TokenRecord, User};
    let token = format!("cst_test_{name}");
    let hash = *blake3::hash(token.as_bytes()).as_bytes();
    let user = User { name: name.into(), role, case: None, disabled: false, grants: vec![], created_ms: 0 };
    let rec = TokenRecord {
        id: hex::encode(&hash[..6]),
        user: name.into(),
        created_ms: 0,
        expires_ms,
        revoked: false,
        issued_by: "test".into(),
    };
    meta.propose(Command::CreateUser { user, token_hash: hash, token: rec }).await.unwrap();
    token
}

/// Registers a `test://` camera recorded by node 1.
pub async fn add_camera(meta: &custos_node::meta::Meta, id: &str) {
    let cam = custos_node::meta::Camera {
        id: id.into(),
        name: String::new(),
        source: "test://".into(),
        recorder: 1,
        added_ms: 0,
        sensitive: false,
    };
    meta.propose(custos_node::meta::Command::AddCamera(cam)).await.unwrap();
}
