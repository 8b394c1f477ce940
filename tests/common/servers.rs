//! The servers tests talk to besides nodes: the RTSP test camera, the S3 server
//! (s3s-fs) and moto (S3 with Object Lock).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{bin, free_port};

/// A running RTSP test camera; killed on drop.
pub struct TestCamera {
    child: Child,
    pub url: String,
    pub port: u16,
}

impl TestCamera {
    /// Starts a camera on `port` (0 = any) serving H.264.
    pub fn start(port: u16) -> TestCamera {
        Self::start_with(port, &[])
    }

    pub fn start_with(port: u16, extra: &[&str]) -> TestCamera {
        let mut child = Command::new(bin("custos-test-camera"))
            .args(["--port", &port.to_string(), "--path", "/cam"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn custos-test-camera");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("camera ready line");
        let url = line.trim().strip_prefix("ready ").unwrap_or_else(|| panic!("camera said {line:?}")).to_string();
        let port = url.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
        TestCamera { child, url, port }
    }

    /// Kills the camera abruptly, as a power cut would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestCamera {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real S3 server (`custos-test-s3`, s3s-fs) on loopback; killed on drop.
pub struct TestS3 {
    child: Option<Child>,
    pub root: tempfile::TempDir,
    pub port: u16,
    pub url: String,
}

/// Credentials the test S3 server accepts.
pub const S3_KEY: (&str, &str) = ("custos-test", "custos-test-secret-key");

impl TestS3 {
    /// Starts a server with bucket `bucket`.
    pub fn start(bucket: &str) -> TestS3 {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(bucket)).unwrap();
        let mut s = TestS3 { child: None, root, port: free_port(), url: String::new() };
        s.restart();
        s
    }

    /// Starts (again) on the same port and directory.
    pub fn restart(&mut self) {
        let mut child = Command::new(bin("custos-test-s3"))
            .arg("--root")
            .arg(self.root.path())
            .args(["--port", &self.port.to_string(), "--access-key", S3_KEY.0, "--secret-key", S3_KEY.1])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn custos-test-s3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("s3 ready line");
        self.url = line.trim().strip_prefix("ready ").unwrap_or_else(|| panic!("s3 said {line:?}")).to_string();
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The stored object at `key` in `bucket`, if any.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.path().join(bucket).join(key)).ok()
    }

    /// The files of every object under `dir` in `bucket`.
    pub fn files_under(&self, bucket: &str, dir: &str) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.path().join(bucket).join(dir), &mut out);
        out.sort();
        out
    }

    /// The object under `dir` in `bucket` that holds `bytes` verbatim, and where.
    pub fn find_bytes(&self, bucket: &str, dir: &str, bytes: &[u8]) -> Option<(PathBuf, usize)> {
        self.files_under(bucket, dir).into_iter().find_map(|f| {
            let data = std::fs::read(&f).ok()?;
            data.windows(bytes.len()).position(|w| w == bytes).map(|at| (f, at))
        })
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        self.kill();
    }
}

/// moto in server mode on loopback: an S3 server that implements Object Lock, which
/// `custos-test-s3` (s3s-fs) does not. `ops/setup.sh` installs it into `target/py`.
pub struct TestMoto {
    child: Child,
    pub url: String,
}

/// The venv's Python, which has moto and boto3.
pub fn moto_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python");
    assert!(p.exists(), "{} is missing: run ops/setup.sh, which installs moto there", p.display());
    p
}

impl TestMoto {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> TestMoto {
        let port = free_port();
        let child = Command::new(moto_python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto");
        let mut m = TestMoto { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = m.child.try_wait().unwrap() {
                panic!("moto exited with {status} at start");
            }
            assert!(Instant::now() < deadline, "moto did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        m.py(S3_KEY, "s3.list_buckets()", &[]);
        m
    }

    /// Runs a Python snippet with `s3`, a boto3 client signed with `key`, and `args` as
    /// `sys.argv[1:]`; returns what it printed. Panics if it fails.
    pub fn py(&self, key: (&str, &str), script: &str, args: &[&str]) -> String {
        let prelude = "import sys, json, boto3\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
            aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\n\
            sys.argv = sys.argv[3:]\n";
        let out = Command::new(moto_python())
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .args([self.url.as_str(), key.0, key.1])
            .args(args)
            .output()
            .expect("run python");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "python failed:\n{script}\n{text}{}", String::from_utf8_lossy(&out.stderr));
        text
    }
}

impl Drop for TestMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
