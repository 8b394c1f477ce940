//! Hostile input at the edges: cameras that send garbage or truncated streams, clients
//! that send oversized or malformed requests, a peer that sends a damaged blob. Each
//! gets a clear error (and an alarm where an operator should act), and nothing else on
//! the node is harmed: the healthy camera beside them keeps recording.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{now_ms, wait_for, Node};
use rand::{Rng, SeedableRng};

const PURPOSE: &str = "hostile input check: review recording";

/// A "camera" that answers every connection with random bytes.
fn garbage_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for mut s in l.incoming().flatten() {
            let junk: Vec<u8> = (0..64 * 1024).map(|_| rng.gen()).collect();
            let _ = s.write_all(&junk);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_camera_streams_are_refused_without_harm() {
    let tmp = tempfile::tempdir().unwrap();
    // A real recording, cut short and with a run of bytes overwritten in the middle.
    let ts = tmp.path().join("cut.ts");
    let st = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=150", "!", "video/x-raw,width=320,height=180,framerate=25/1"])
        .args(["!", "x264enc", "key-int-max=25", "!", "mpegtsmux", "!", "filesink"])
        .arg(format!("location={}", ts.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let mut bytes = std::fs::read(&ts).unwrap();
    bytes.truncate(bytes.len() * 2 / 3);
    let mid = bytes.len() / 2;
    bytes[mid..mid + 4096].fill(0xA5);
    std::fs::write(&ts, &bytes).unwrap();
    // Noise with a video file's name.
    let noise = tmp.path().join("noise.mp4");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    std::fs::write(&noise, (0..256 * 1024).map(|_| rng.gen::<u8>()).collect::<Vec<_>>()).unwrap();

    let junk_port = garbage_server();
    let cameras = [
        "good=test://ball".to_string(),
        format!("junk=rtsp://127.0.0.1:{junk_port}/cam"),
        format!("cut=file://{}", ts.display()),
        format!("noise=file://{}", noise.display()),
    ];
    let mut node = Node::init(&cameras, 1_000);
    let c = node.start_as_security().await;
    let t0 = now_ms() - 1_000;

    // The truncated recording yields the footage it holds.
    wait_for(60, "segments from the truncated recording", || async {
        let (s, _) = c.search("cut", t0, now_ms() + 60_000, PURPOSE).await.ok()?;
        (!s.is_empty()).then_some(())
    })
    .await;
    // Garbage yields a camera-down alarm for each source an operator must fix.
    let admin = node.connect(Some(&node.token)).await.unwrap();
    let alarms = wait_for(60, "camera-down alarms for junk and noise", || async {
        let list = admin.list_alarms(false).await.ok()?;
        let down: Vec<_> = list.into_iter().filter(|a| a.kind == "camera-down").collect();
        let has = |id: &str| down.iter().any(|a| a.subject == id);
        (has("junk") && has("noise")).then_some(down)
    })
    .await;
    assert!(!alarms.iter().any(|a| a.subject == "good"), "the healthy camera is not down: {alarms:?}");
    let log = node.log();
    for cam in ["junk", "noise"] {
        assert!(
            log.lines()
                .any(|l| l.contains("camera down") && l.contains(&format!("camera={cam}")) && l.contains("hint=")),
            "the log names what failed for {cam}:\n{log}"
        );
        let (s, _) = c.search(cam, t0, now_ms() + 60_000, PURPOSE).await.unwrap();
        assert!(s.is_empty(), "{cam} recorded nothing from garbage");
    }
    // The healthy camera kept recording throughout, and still is.
    let before = c.search("good", t0, now_ms() + 60_000, PURPOSE).await.unwrap().0.len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = c.search("good", t0, now_ms() + 60_000, PURPOSE).await.unwrap().0.len();
    assert!(before >= 2 && after > before, "good camera: {before} then {after} segments");
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_get_clear_errors() {
    use custos_proto::v1::peer_client::PeerClient;
    use custos_proto::v1::{blob_chunk, BlobChunk, BlobHeader};
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

    let mut node = Node::init(&["door=test://ball".to_string()], 1_000);
    let c = node.start_as_security().await;
    let (from, to) = (now_ms() - 60_000, now_ms());
    let code = |e: &custos_client::ClientError| e.code();

    // A purpose of 2,000 bytes: refused by the validator, saying the limit.
    let e = c.search("door", from, to, &"fall in ward 3 ".repeat(140)).await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::InvalidArgument));
    assert!(e.to_string().contains("longer than 1000 bytes"), "{e}");
    // A request of 5 MiB: refused by the transport before any handler runs.
    let e = c.search("door", from, to, &"x".repeat(5 << 20)).await.unwrap_err();
    assert!(e.to_string().contains("too large") || e.to_string().contains("limit"), "{e}");
    // A path-like camera id and an inverted range.
    let e = c.search("../../etc", from, to, PURPOSE).await.unwrap_err();
    assert!(e.to_string().contains("camera id"), "{e}");
    let e = c.search("door", to, from, PURPOSE).await.unwrap_err();
    assert!(e.to_string().contains("inverted"), "{e}");

    // Garbage on the API port: a MiB of noise, and a half-finished TLS handshake.
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for n in [1usize << 20, 5] {
        let mut s = tokio::net::TcpStream::connect(&node.addr).await.unwrap();
        let junk: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        let _ = tokio::io::AsyncWriteExt::write_all(&mut s, &junk).await;
    }

    // A peer (holding this cluster's certificate) sends a blob whose hash is wrong.
    let k = node.data().join("keys");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read_to_string(&node.ca_file).unwrap()))
        .domain_name("127.0.0.1")
        .identity(Identity::from_pem(
            std::fs::read_to_string(k.join("node.pem")).unwrap(),
            std::fs::read_to_string(k.join("node.key")).unwrap(),
        ));
    let ch = Endpoint::from_shared(format!("https://{}", node.addr)).unwrap().tls_config(tls).unwrap();
    let mut peer = PeerClient::new(ch.connect().await.unwrap());
    let blob = vec![7u8; 10_000];
    let content_hash = blake3::hash(b"some footage").as_bytes().to_vec();
    let header = BlobHeader {
        content_hash: content_hash.clone(),
        blob_hash: blake3::hash(b"another blob").as_bytes().to_vec(),
        blob_bytes: blob.len() as u64,
    };
    let chunks = vec![
        BlobChunk { item: Some(blob_chunk::Item::Header(header)) },
        BlobChunk { item: Some(blob_chunk::Item::Data(blob)) },
    ];
    let e = peer.put_blob(tokio_stream::iter(chunks)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::DataLoss);
    assert!(e.message().contains("arrived damaged") && e.message().contains("nothing was stored"), "{e}");
    assert!(!node.holds_blob(&content_hash), "a damaged blob is never stored");
    // A transfer without its header.
    let e = peer.put_blob(tokio_stream::iter(vec![BlobChunk { item: None }])).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(node.log().contains("arrived damaged"), "the receiving node logs the damaged transfer");

    // Nothing of that harmed the node: it answers, and the camera still records.
    let n0 = c.search("door", from, now_ms() + 60_000, PURPOSE).await.unwrap().0.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n1 = c.search("door", from, now_ms() + 60_000, PURPOSE).await.unwrap().0.len();
    assert!(n1 > n0, "recording went on: {n0} then {n1} segments");
    node.stop();
}
