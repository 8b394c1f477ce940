//! The catalog's state machine is total: a record it cannot read while applying an entry
//! stops the node (fail-stop) instead of being taken for a refusal, which would let one
//! replica apply the entry differently from the others.

mod common;

use common::Node;

/// A user record damaged on one node's disk: the next command that reads it stops that
/// node with the fail-stop message, and nothing is reported as a mere refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_during_apply_stops_the_node_instead_of_refusing() {
    let mut node = Node::init(&[], 4_000);
    let admin = node.start().await;
    admin.add_user("bob", "security", None, 0).await.unwrap();
    node.stop();
    {
        // A disk that returns garbage for bob's record, as a failing drive would.
        let db = custos_node::meta::db::open(&node.data().join("catalog")).unwrap();
        let cf = db.cf_handle(custos_node::meta::db::CF_USERS).unwrap();
        db.put_cf(cf, b"bob", [custos_node::meta::types::FORMAT_V1, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
    }
    let admin = node.start().await;
    let res = admin.disable_user("bob").await;
    let status = node.wait_exit(30).unwrap_or_else(|| {
        panic!("the node kept running after a failed apply (answer: {:?}):\n{}", res.as_ref().err(), node.log())
    });
    assert_eq!(status.code(), Some(1), "{}", node.log());
    let log = node.log();
    assert!(log.contains("FATAL: the metadata store failed"), "{log}");
    assert!(log.contains("catalog read failed"), "the log names the failed read: {log}");
    if let Err(e) = res {
        assert_ne!(e.code(), Some(tonic::Code::FailedPrecondition), "not reported as a refusal: {e}");
    }
}
