//! Alarm notifications to webhooks (`[alarms] webhooks = ["https://…"]`), in
//! Alertmanager's webhook JSON, so receivers built for Prometheus (chat bridges, paging,
//! ticketing) work unchanged.
//!
//! The leader posts each batch of alarm changes it has recorded. Delivery runs on its
//! own task behind a bounded queue and never blocks recording or the alarm loop: a full
//! queue drops the notification with a log line (the alarm itself is recorded in the
//! catalog either way), and a failed POST is retried with back-off a few times.

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::meta::AlarmChange;
use custos_formats::fields::fmt_ms;

/// Batches waiting to be posted.
pub const QUEUE: usize = 256;
/// Attempts per batch and URL.
pub const ATTEMPTS: u32 = 6;
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// One POST's time limit.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// The Alertmanager webhook body (version 4) for `changes` recorded at `now_ms` by
/// node `node_id`.
pub fn payload(changes: &[AlarmChange], now_ms: i64, node_id: u64) -> serde_json::Value {
    let alerts: Vec<_> = changes
        .iter()
        .map(|c| {
            json!({
                "status": if c.raise { "firing" } else { "resolved" },
                "labels": {"alertname": c.kind, "subject": c.subject, "service": "custos"},
                "annotations": {"description": c.detail, "summary": format!("{} {}", c.kind, c.subject)},
                "startsAt": if c.raise { fmt_ms(now_ms) } else { "0001-01-01T00:00:00Z".to_string() },
                "endsAt": if c.raise { "0001-01-01T00:00:00Z".to_string() } else { fmt_ms(now_ms) },
                "generatorURL": "",
                "fingerprint": hex::encode(&blake3::hash(format!("{}\0{}", c.kind, c.subject).as_bytes()).as_bytes()[..8]),
            })
        })
        .collect();
    let firing = changes.iter().any(|c| c.raise);
    json!({
        "version": "4",
        "groupKey": "{}:{service=\"custos\"}",
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": "custos",
        "groupLabels": {"service": "custos"},
        "commonLabels": {"service": "custos"},
        "commonAnnotations": {},
        "externalURL": format!("custos node {node_id}"),
        "alerts": alerts,
    })
}

/// Checks a webhook URL from the config.
pub fn validate_url(u: &str) -> Result<(), String> {
    let ok = (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8 && !u.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(format!("webhook {u:?} is not an http:// or https:// URL"))
    }
}

/// Where the alarm loop hands its recorded changes.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<serde_json::Value>,
}

impl Notifier {
    /// Starts the delivery task for `urls`; `None` when there are none.
    pub fn start(urls: Vec<String>, shutdown: crate::Shutdown) -> Option<Notifier> {
        if urls.is_empty() {
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(urls, rx, shutdown));
        Some(Notifier { tx })
    }

    /// Queues a notification; never waits.
    pub fn send(&self, body: serde_json::Value) {
        if let Err(e) = self.tx.try_send(body) {
            tracing::warn!(error = %e, "webhook queue full or closed: this alarm notification is dropped (the alarm is recorded; see custos alarms)");
        }
    }
}

async fn deliver(urls: Vec<String>, mut rx: mpsc::Receiver<serde_json::Value>, shutdown: crate::Shutdown) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: no HTTP client");
            return;
        }
    };
    let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
    loop {
        let body = tokio::select! {
            _ = &mut stop => return,
            b = rx.recv() => match b { Some(b) => b, None => return },
        };
        for url in &urls {
            let mut wait = Duration::from_secs(1);
            for attempt in 1..=ATTEMPTS {
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                let sent =
                    client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes).send().await;
                match sent {
                    Ok(r) if r.status().is_success() => break,
                    Ok(r) => {
                        tracing::warn!(url, status = %r.status(), attempt, "webhook refused the alarm notification")
                    }
                    Err(e) => tracing::warn!(url, error = %e, attempt, "webhook unreachable"),
                }
                if attempt == ATTEMPTS {
                    tracing::error!(
                        url,
                        "alarm notification given up after {ATTEMPTS} attempts (the alarm is recorded)"
                    );
                    break;
                }
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_alertmanagers_shape() {
        let c = vec![
            AlarmChange {
                raise: true,
                kind: "camera-down".into(),
                subject: "lobby".into(),
                detail: "no footage".into(),
            },
            AlarmChange { raise: false, kind: "disk-low".into(), subject: "node 2".into(), detail: String::new() },
        ];
        let v = payload(&c, 1_796_169_600_000, 1);
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["alerts"][0]["labels"]["alertname"], "camera-down");
        assert_eq!(v["alerts"][0]["startsAt"], "2026-12-02T00:00:00Z");
        assert_eq!(v["alerts"][1]["status"], "resolved");
        assert_eq!(v["alerts"][1]["endsAt"], "2026-12-02T00:00:00Z");
        assert!(validate_url("https://hooks.example/custos").is_ok());
        assert!(validate_url("ftp://x").is_err());
    }
}
