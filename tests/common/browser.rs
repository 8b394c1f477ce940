//! A real browser for the console tests: Debian's headless Chromium driven through
//! chromedriver's W3C WebDriver protocol (plain HTTP/1.1 on loopback, spoken here with a
//! few lines over a TcpStream rather than a client library).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where Debian puts the browser itself (`/usr/bin/chromium` is a wrapper script).
const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// A chromedriver process and one browser session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

/// The base64 SHA-256 of a PEM certificate's public key, which Chromium is told to trust
/// (`--ignore-certificate-errors-spki-list`): the node's own certificate and nothing else.
pub fn spki_hash(cert_pem: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            cert_pem.display()
        ))
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = None;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            }
        }
    }
    let mut buf = Vec::new();
    match len {
        Some(n) => {
            buf.resize(n, 0);
            r.read_exact(&mut buf).unwrap();
        }
        None => {
            r.read_to_end(&mut buf).unwrap();
        }
    }
    serde_json::from_slice(&buf).unwrap_or_else(|e| panic!("chromedriver said {status}: {e}"))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at 1366×768 that trusts the certificate
    /// `cert_pem` (a node's, from the cluster CA).
    pub fn start(cert_pem: &Path) -> Browser {
        let port = super::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (ops/setup.sh installs chromium-driver)");
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1366,768".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            "--mute-audio".into(),
            format!("--ignore-certificate-errors-spki-list={}", spki_hash(cert_pem)),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let v = http(port, "POST", "/session", Some(&caps));
        let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no browser session: {v}")).to_string();
        Browser { driver, port, session, _profile: profile }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = http(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref());
        if let Some(err) = v["value"].get("error") {
            panic!("webdriver {method} {path}: {err}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Runs `script` whose last argument is a callback to call with the result.
    pub fn js_async(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/async", Some(json!({ "script": script, "args": args })))
    }

    /// `fetch(path, init)` from the page, returning `{status, type, disposition, body}`.
    pub fn fetch(&self, path: &str, init: Value) -> Value {
        self.js_async(
            "const [p, init, done] = arguments;
             fetch(p, init).then(async (r) => done({status: r.status, type: r.headers.get('content-type') || '',
               disposition: r.headers.get('content-disposition') || '', body: await r.text()}))
             .catch((e) => done({status: 0, type: '', disposition: '', body: String(e)}));",
            json!([path, init]),
        )
    }

    fn element(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_string()
    }

    /// Clicks the element `css` as a user would.
    pub fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Types `text` into the element `css` (after clearing it).
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }

    /// The text of `css`, or "" if absent.
    pub fn text(&self, css: &str) -> String {
        self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", json!([css]))
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// True if `css` exists and is shown.
    pub fn visible(&self, css: &str) -> bool {
        self.js(
            "const e = document.querySelector(arguments[0]); return !!e && !e.closest('[hidden]') && e.offsetParent !== null;",
            json!([css]),
        )
        .as_bool()
        .unwrap_or(false)
    }

    /// Waits up to `secs` for `script` (returning a truthy value) to hold.
    pub fn wait(&self, secs: u64, what: &str, script: &str) -> Value {
        let t = Instant::now();
        loop {
            let v = self.js(script, json!([]));
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(t.elapsed() < Duration::from_secs(secs), "timed out after {secs} s waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
