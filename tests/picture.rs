//! Picture checks against a real node and real RTSP cameras: a camera serving a black
//! picture raises `camera-picture` within two checks while a healthy one raises nothing;
//! a camera whose picture is replaced by another scene is flagged as turned until
//! `custos camera confirm` is approved; the alarm clears when the picture returns.

mod common;

use std::time::{Duration, Instant};

use common::{scrape_metrics, wait_for, Node, TestCamera};

/// Seconds between checks in this test.
const CHECK_EVERY_S: u64 = 2;

fn camera(port: u16, pattern: &str) -> TestCamera {
    TestCamera::start_with(port, &["--keyint", "25", "--width", "320", "--height", "180", "--pattern", pattern])
}

/// True once the node has committed a segment of `camera`.
fn has_footage(node: &Node, camera: &str) -> bool {
    let needle = format!("custos_ingest_segments_total{{camera=\"{camera}\"}} ");
    scrape_metrics(&node.metrics)
        .lines()
        .find_map(|l| l.strip_prefix(&needle).and_then(|v| v.trim().parse::<f64>().ok()))
        .is_some_and(|v| v >= 1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_picture_is_an_alarm_a_healthy_one_is_not_and_another_scene_is_a_turned_camera() {
    let mut dark = camera(0, "black");
    let mut hall = camera(0, "smpte");
    let (dark_port, hall_port) = (dark.port, hall.port);
    let mut node = Node::init(&[format!("dark={}", dark.url), format!("hall={}", hall.url)], 1_000);
    node.configure(&format!("picture_check_every_s = {CHECK_EVERY_S}"));
    let admin = node.start().await;
    let operator = node.user("olga", "operator", None).await;

    wait_for(60, "footage of both cameras", || async {
        (has_footage(&node, "dark") && has_footage(&node, "hall")).then_some(())
    })
    .await;
    // Two checks, plus a ping (0.5 s) and an evaluation (2 s) to carry the finding to the
    // alarm list, plus one decode's worth of slack on a loaded machine.
    let within = Duration::from_secs(2 * CHECK_EVERY_S + 4);
    let t0 = Instant::now();
    let black = wait_for(30, "camera-picture for dark", || async {
        let list = operator.list_alarms(false).await.ok()?;
        list.into_iter().find(|a| a.kind == "camera-picture" && a.subject == "dark")
    })
    .await;
    assert!(t0.elapsed() <= within, "raised after {:?}, more than two checks", t0.elapsed());
    assert!(black.detail.contains("black"), "{}", black.detail);

    // Two more checks: the healthy camera raises nothing.
    tokio::time::sleep(Duration::from_secs(2 * CHECK_EVERY_S + 1)).await;
    let all = operator.list_alarms(true).await.unwrap();
    assert!(!all.iter().any(|a| a.subject == "hall"), "{all:?}");

    // The hall camera now shows another scene: it was turned.
    hall.kill();
    let _hall = camera(hall_port, "checkers-8");
    let turned = wait_for(90, "camera-picture for hall, turned", || async {
        let list = operator.list_alarms(false).await.ok()?;
        list.into_iter().find(|a| a.kind == "camera-picture" && a.subject == "hall")
    })
    .await;
    assert!(turned.detail.contains("another scene"), "{}", turned.detail);

    // The new view is accepted with four eyes: the next picture becomes the reference
    // and the alarm clears.
    let change = admin.confirm_camera("hall").await.unwrap();
    assert!(operator.confirm_camera("hall").await.is_err(), "an operator cannot re-aim the reference");
    let still_open = operator.list_alarms(false).await.unwrap();
    assert!(still_open.iter().any(|a| a.id == turned.id), "nothing changes before an approver accepts");
    node.approve(change).await;
    wait_for(30, "the turned alarm cleared after the confirmation", || async {
        let all = operator.list_alarms(true).await.ok()?;
        all.into_iter().find(|a| a.id == turned.id && a.cleared_ms != 0)
    })
    .await;

    // The dark camera's picture returns: its alarm clears by itself.
    dark.kill();
    let _dark = camera(dark_port, "smpte");
    wait_for(90, "the black picture alarm cleared", || async {
        let all = operator.list_alarms(true).await.ok()?;
        all.into_iter().find(|a| a.id == black.id && a.cleared_ms != 0)
    })
    .await;
}
