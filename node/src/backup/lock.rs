//! S3 Object Lock: the few requests `object_store` cannot make.
//!
//! `object_store` 0.14 sends no Object Lock headers on a put (its attributes carry only
//! content headers and `x-amz-meta-*`), and S3 insists that every `x-amz-*` header be
//! signed, so client-wide default headers will not do either. This module therefore signs
//! its own requests (AWS Signature Version 4, with `ring`, which the node already links)
//! and sends them with `reqwest`, for exactly these operations:
//!
//! - `GetObjectLockConfiguration`: is Object Lock enabled on the bucket (`object_lock = "auto"`);
//! - `PutObject` with `x-amz-object-lock-mode: COMPLIANCE`, a retain-until date and, for
//!   held footage, `x-amz-object-lock-legal-hold: ON`;
//! - `PutObjectLegalHold` ON or OFF on every version of an object;
//! - `ListObjectVersions` and `DeleteObject?versionId=`: on a bucket with Object Lock
//!   (always versioned) a plain DELETE only hides an object behind a delete marker, so the
//!   worker deletes each version, and learns from the refusal that one is still locked.
//!
//! Everything else (reads, lists, the trash cursor) still goes through `object_store`.
//! Only static credentials are supported here (environment or credentials file), the
//! same ones `open_store` uses; requests are path-style, as `object_store` sends them.

use std::time::Duration;

use base64::Engine as _;
use object_store::path::Path as ObjectPath;
use reqwest::{Method, StatusCode, Url};
use ring::{digest, hmac};

use crate::config::BackupConfig;
use crate::error::{Error, Result};

/// Longest one Object Lock request may take, body included (packs are at most
/// `pack_target_bytes`, 8 MiB by default).
pub const LOCK_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Versions of one object listed at most before deleting or holding them: a pack has one
/// version, or a few when an upload was repeated after a lost commit.
pub const VERSIONS_MAX: usize = 1_000;

/// What deleting every version of an object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// No version is left (or there was none).
    Gone,
    /// The store refused to delete a version: it is under retention or a legal hold.
    Locked,
}

/// Static S3 credentials.
#[derive(Clone)]
struct Credentials {
    key_id: String,
    secret: String,
    token: Option<String>,
}

/// A signed S3 client for the Object Lock requests of one bucket.
pub struct Locker {
    http: reqwest::Client,
    /// `endpoint/bucket`, without a trailing slash.
    base: Url,
    region: String,
    creds: Credentials,
}

impl std::fmt::Debug for Locker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locker").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

/// An S3 error: status, `<Code>` and `<Message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)
    }
}

impl Locker {
    /// A client for the configured bucket, with credentials from the credentials file or
    /// the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    pub fn new(cfg: &BackupConfig) -> Result<Locker> {
        let creds = match &cfg.credentials_file {
            Some(path) => {
                let (key_id, secret, token) = super::read_credentials_file(path, &cfg.profile)?;
                Credentials { key_id, secret, token }
            }
            None => {
                let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
                match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                    (Some(key_id), Some(secret)) => Credentials { key_id, secret, token: var("AWS_SESSION_TOKEN") },
                    _ => {
                        return Err(Error::InvalidArgument(
                            "[backup] Object Lock needs static credentials: AWS_ACCESS_KEY_ID and \
                             AWS_SECRET_ACCESS_KEY in the node's environment, or backup.credentials_file"
                                .into(),
                        ))
                    }
                }
            }
        };
        let endpoint = cfg
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok())
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", cfg.region));
        let base = Url::parse(&format!("{}/{}", endpoint.trim_end_matches('/'), cfg.bucket))
            .map_err(|e| Error::InvalidArgument(format!("backup.endpoint {endpoint:?}: {e}")))?;
        if base.scheme() == "http" && !cfg.allow_http {
            return Err(Error::InvalidArgument(format!(
                "backup.endpoint {endpoint:?} is plain HTTP; set backup.allow_http = true (loopback tests only)"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(LOCK_REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        Ok(Locker { http, base, region: cfg.region.clone(), creds })
    }

    /// Whether the bucket has Object Lock enabled. A store that does not implement
    /// `GetObjectLockConfiguration` has none.
    pub async fn bucket_lock_enabled(&self) -> std::result::Result<bool, String> {
        match self.send(Method::GET, None, &[("object-lock", "")], vec![], Vec::new()).await? {
            Ok(body) => {
                Ok(element_text(&String::from_utf8_lossy(&body), "ObjectLockEnabled").as_deref() == Some("Enabled"))
            }
            Err(e)
                if e.status == 404 && e.code != "NoSuchBucket"
                    || e.status == 501
                    || e.code == "NotImplemented"
                    || e.code == "ObjectLockConfigurationNotFoundError" =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("reading the bucket's Object Lock configuration: {e}")),
        }
    }

    /// Stores `body` at `key` in COMPLIANCE mode until `retain_until_ms` (none when
    /// `None`), with a legal hold when `legal_hold`.
    pub async fn put(
        &self,
        key: &ObjectPath,
        body: Vec<u8>,
        retain_until_ms: Option<i64>,
        legal_hold: bool,
    ) -> std::result::Result<(), String> {
        let mut headers = vec![("content-md5".to_string(), content_md5(&body))];
        if let Some(until) = retain_until_ms {
            headers.push(("x-amz-object-lock-mode".into(), "COMPLIANCE".into()));
            headers.push(("x-amz-object-lock-retain-until-date".into(), retain_until_date(until)));
        }
        if legal_hold {
            headers.push(("x-amz-object-lock-legal-hold".into(), "ON".into()));
        }
        match self.send(Method::PUT, Some(key.as_ref()), &[], headers, body).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("storing {key} under Object Lock: {e}")),
        }
    }

    /// Turns the legal hold of every version of `key` on or off. Returns how many
    /// versions it changed (0: the object is not there).
    pub async fn set_legal_hold(&self, key: &ObjectPath, on: bool) -> std::result::Result<usize, String> {
        let status = if on { "ON" } else { "OFF" };
        let body = format!(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></LegalHold>"
        )
        .into_bytes();
        let mut n = 0;
        for (version, marker) in self.versions(key).await? {
            if marker {
                continue;
            }
            let headers = vec![("content-md5".to_string(), content_md5(&body))];
            let query = [("legal-hold", ""), ("versionId", version.as_str())];
            match self.send(Method::PUT, Some(key.as_ref()), &query, headers, body.clone()).await? {
                Ok(_) => n += 1,
                Err(e) => return Err(format!("setting the legal hold of {key} {status}: {e}")),
            }
        }
        Ok(n)
    }

    /// The versions of exactly `key`, newest first: (version id, is a delete marker).
    pub async fn versions(&self, key: &ObjectPath) -> std::result::Result<Vec<(String, bool)>, String> {
        let max = VERSIONS_MAX.to_string();
        let query = [("versions", ""), ("prefix", key.as_ref()), ("max-keys", max.as_str())];
        let body = match self.send(Method::GET, None, &query, vec![], Vec::new()).await? {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return Err(format!("listing the versions of {key}: {e}")),
        };
        Ok(parse_versions(&body, key.as_ref()))
    }

    /// Deletes every version of `key`, so its bytes are really gone; a version the store
    /// refuses to delete (retention or legal hold) leaves the object [`Deleted::Locked`].
    pub async fn delete_versions(&self, key: &ObjectPath) -> std::result::Result<Deleted, String> {
        let mut outcome = Deleted::Gone;
        for (version, _) in self.versions(key).await? {
            let query = [("versionId", version.as_str())];
            match self.send(Method::DELETE, Some(key.as_ref()), &query, vec![], Vec::new()).await? {
                Ok(_) => {}
                Err(e) if e.status == 404 => {}
                Err(e) if e.status == 403 || e.code == "AccessDenied" || e.code == "InvalidRequest" => {
                    outcome = Deleted::Locked;
                }
                Err(e) => return Err(format!("deleting {key} version {version}: {e}")),
            }
        }
        Ok(outcome)
    }

    /// Signs and sends one request. The outer error is a transport failure; the inner
    /// one is the store's answer when it is not a success.
    async fn send(
        &self,
        method: Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        mut headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> std::result::Result<std::result::Result<bytes::Bytes, S3Error>, String> {
        let mut path = self.base.path().trim_end_matches('/').to_string();
        if let Some(k) = key {
            path.push('/');
            path.push_str(&uri_encode(k, false));
        }
        let canonical_query = canonical_query(query);
        let mut url = self.base.clone();
        url.set_path(&path);
        url.set_query((!canonical_query.is_empty()).then_some(canonical_query.as_str()));
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(format!("backup endpoint {} has no host", self.base)),
        };
        let now = time::OffsetDateTime::now_utc();
        headers.push(("host".into(), host));
        let signed = sign(
            &SignInput {
                method: method.as_str(),
                path: &path,
                query: &canonical_query,
                headers,
                body: &body,
                region: &self.region,
                now,
            },
            &self.creds,
        );
        let mut req = self.http.request(method, url.clone());
        for (k, v) in &signed {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let resp = req.body(body).send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if status.is_success() {
            return Ok(Ok(bytes));
        }
        let text = String::from_utf8_lossy(&bytes);
        Ok(Err(S3Error {
            status: status.as_u16(),
            code: element_text(&text, "Code").unwrap_or_else(|| {
                status.canonical_reason().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR.as_str()).to_string()
            }),
            message: element_text(&text, "Message").unwrap_or_default(),
        }))
    }
}

/// What one request signature covers.
struct SignInput<'a> {
    method: &'a str,
    /// Already URI-encoded.
    path: &'a str,
    /// Already canonical (sorted, encoded).
    query: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
    region: &'a str,
    now: time::OffsetDateTime,
}

/// AWS Signature Version 4 for S3: returns the headers to send, `authorization` included.
fn sign(input: &SignInput<'_>, creds: &Credentials) -> Vec<(String, String)> {
    let amz_date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        input.now.year(),
        u8::from(input.now.month()),
        input.now.day(),
        input.now.hour(),
        input.now.minute(),
        input.now.second()
    );
    let date = &amz_date[..8];
    let payload = hex::encode(digest::digest(&digest::SHA256, input.body));
    let mut headers: Vec<(String, String)> =
        input.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())).collect();
    headers.push(("x-amz-date".into(), amz_date.clone()));
    headers.push(("x-amz-content-sha256".into(), payload.clone()));
    if let Some(t) = &creds.token {
        headers.push(("x-amz-security-token".into(), t.clone()));
    }
    headers.sort();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical_request =
        format!("{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload}", input.method, input.path, input.query);
    let scope = format!("{date}/{}/s3/aws4_request", input.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(digest::digest(&digest::SHA256, canonical_request.as_bytes()))
    );
    let mac = |key: &[u8], data: &str| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes());
    let k_date = mac(format!("AWS4{}", creds.secret).as_bytes(), date);
    let k_region = mac(k_date.as_ref(), input.region);
    let k_service = mac(k_region.as_ref(), "s3");
    let k_signing = mac(k_service.as_ref(), "aws4_request");
    let signature = hex::encode(mac(k_signing.as_ref(), &to_sign).as_ref());
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.key_id
        ),
    ));
    headers
}

/// S3's URI encoding: every byte but `A-Za-z0-9-._~` as `%XX`; `/` kept in paths.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The canonical query string: encoded pairs sorted by name, `name=` for flags.
fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> =
        query.iter().map(|(k, v)| (uri_encode(k, true), uri_encode(v, true))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// `Content-MD5`, which S3 requires on a put that sets Object Lock and on `PutObjectLegalHold`.
fn content_md5(body: &[u8]) -> String {
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// The ISO 8601 retain-until date, rounded up to the second so retention is never shorter
/// than asked.
pub fn retain_until_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".into())
}

/// The text of the first `<name>` element, with XML entities undone.
fn element_text(xml: &str, name: &str) -> Option<String> {
    elements(xml, name).into_iter().next().map(unescape)
}

/// The inner text of each `<name>...</name>` element (not nested in itself).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// Versions and delete markers of exactly `key` in a `ListVersionsResult`.
fn parse_versions(xml: &str, key: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (tag, marker) in [("Version", false), ("DeleteMarker", true)] {
        for v in elements(xml, tag) {
            if element_text(v, "Key").as_deref() == Some(key) {
                if let Some(id) = element_text(v, "VersionId") {
                    out.push((id, marker));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of AWS's Signature Version 4 documentation for S3.
    #[test]
    fn signatures_match_aws_documented_example() {
        let creds = Credentials {
            key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            token: None,
        };
        let input = SignInput {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: vec![
                ("Host".into(), "examplebucket.s3.amazonaws.com".into()),
                ("Range".into(), "bytes=0-9".into()),
            ],
            body: b"",
            region: "us-east-1",
            now: time::macros::datetime!(2013-05-24 00:00:00 UTC),
        };
        let h = sign(&input, &creds);
        let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn queries_and_keys_are_encoded_the_s3_way() {
        assert_eq!(uri_encode("site a/packs/ab+c", false), "site%20a/packs/ab%2Bc");
        assert_eq!(
            canonical_query(&[("versions", ""), ("prefix", "p/x y"), ("max-keys", "5")]),
            "max-keys=5&prefix=p%2Fx%20y&versions="
        );
        assert_eq!(retain_until_date(1_800_000_000_001), "2027-01-15T08:00:01Z");
        assert_eq!(retain_until_date(1_800_000_000_000), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn versions_of_one_key_are_picked_out_of_a_listing() {
        let xml = "<ListVersionsResult><Version><Key>p/a</Key><VersionId>v2</VersionId></Version>\
                   <Version><Key>p/ab</Key><VersionId>x</VersionId></Version>\
                   <DeleteMarker><Key>p/a</Key><VersionId>m1</VersionId></DeleteMarker>\
                   <Version><Key>p/a</Key><VersionId>v1</VersionId></Version></ListVersionsResult>";
        assert_eq!(parse_versions(xml, "p/a"), vec![("v2".into(), false), ("v1".into(), false), ("m1".into(), true)]);
        let err = "<Error><Code>AccessDenied</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(element_text(err, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(element_text(err, "Message").as_deref(), Some("a & b"));
    }
}
