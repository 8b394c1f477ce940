//! Holds, black-box: placed in one command (open-ended allowed), listed, and released
//! only by two different people; every step audited.

mod common;

use common::{now_ms, Node};
use custos_client::AuditLogRequest;
use custos_evidence::AuditBody;
use tonic::Code;

const REASON: &str = "violence against staff in emergency, report 2026-311";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_are_placed_at_once_and_released_only_by_two_people() {
    let mut node = Node::init(&["emergency=test://ball".to_string(), "corridor=test://snow".to_string()], 4_000);
    node.start().await;
    let operator = node.user("night-op", "operator", None).await;
    let ann = node.user("ann", "security", None).await;
    let bob = node.user("bob", "approver", None).await;
    let auditor = node.user("audrey", "auditor", None).await;
    let now = now_ms();

    // An operator places an incident hold "from now on" in one command.
    let cams = vec!["emergency".to_string(), "corridor".to_string()];
    let h = operator.place_hold("INC-311", &cams, now - 600_000, None, REASON).await.unwrap();
    assert_eq!(h.id, "H-000001");
    assert_eq!((h.to_ms, h.released_ms, h.placed_by.as_str()), (0, 0, "night-op"));
    assert_eq!(h.cameras, cams);
    let bounded = ann
        .place_hold("CASE-7", &["corridor".to_string()], now - 3_600_000, Some(now - 1_800_000), REASON)
        .await
        .unwrap();
    assert_eq!(bounded.id, "H-000002");
    assert_eq!(auditor.list_holds(false).await.unwrap().len(), 2);

    // Bad requests say what is wrong.
    let bad = |r: Result<custos_client::Hold, custos_client::ClientError>, code: Code, text: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Some(code), "{e}");
        assert!(e.to_string().contains(text), "{e} should mention {text}");
    };
    bad(ann.place_hold("", &cams, now, None, REASON).await, Code::InvalidArgument, "--case");
    bad(ann.place_hold("C", &[], now, None, REASON).await, Code::InvalidArgument, "cameras");
    bad(ann.place_hold("C", &["nope".to_string()], now, None, REASON).await, Code::NotFound, "nope");
    bad(ann.place_hold("C", &cams, now, Some(now - 1), REASON).await, Code::InvalidArgument, "--to");
    bad(ann.place_hold("C", &cams, now, None, "hold").await, Code::InvalidArgument, "reason");
    bad(ann.approve_release("H-000404").await, Code::NotFound, "H-000404");

    // One approval is not enough; the same person twice is not enough.
    let after_one = ann.approve_release("H-000001").await.unwrap();
    assert_eq!((after_one.released_ms, after_one.release_approved_by.clone()), (0, vec!["ann".to_string()]));
    let e = ann.approve_release("H-000001").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert!(e.to_string().contains("different person"), "{e}");
    assert_eq!(auditor.list_holds(false).await.unwrap().len(), 2, "still active");

    // A second, different person releases it.
    let released = bob.approve_release("H-000001").await.unwrap();
    assert!(released.released_ms > 0);
    assert_eq!(released.release_approved_by, vec!["ann".to_string(), "bob".to_string()]);
    let active = auditor.list_holds(false).await.unwrap();
    assert_eq!(active.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec!["H-000002"]);
    assert_eq!(auditor.list_holds(true).await.unwrap().len(), 2);
    let e = operator.approve_release("H-000002").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "operators place holds but do not release them: {e}");

    // Every step is in the audit log.
    let log: Vec<AuditBody> = auditor
        .audit_log(AuditLogRequest::default())
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(&e.body).unwrap())
        .collect();
    let steps: Vec<(String, String, String)> = log
        .iter()
        .filter(|b| b.event.action.as_str().starts_with("hold-"))
        .map(|b| (b.event.user.clone(), b.event.action.to_string(), b.event.outcome.to_string()))
        .collect();
    let s = |u: &str, a: &str, o: &str| (u.to_string(), a.to_string(), o.to_string());
    assert_eq!(
        steps,
        vec![
            s("night-op", "hold-place", "ok"),
            s("ann", "hold-place", "ok"),
            s("ann", "hold-release", "rejected"),
            s("ann", "hold-release", "ok"),
            s("ann", "hold-release", "rejected"),
            s("bob", "hold-release", "ok"),
            s("night-op", "hold-release", "denied"),
        ]
    );
    let placed = log.iter().find(|b| b.event.action == "hold-place").unwrap();
    assert_eq!(placed.event.purpose, REASON);
    assert_eq!(placed.event.to_ms, None, "open-ended");
    node.stop();
}
