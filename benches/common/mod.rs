//! What the single-node benchmarks share: a blob store, a sealing context and a
//! single-node Raft catalog in a temporary directory, synthetic segments, and the median.
#![allow(dead_code)] // each benchmark uses its own subset

use std::sync::Arc;

use custos_node::clock::SystemClock;
use custos_node::ingest::RawSegment;
use custos_node::meta::{Codec, Meta};
use custos_node::recorder::SealContext;
use custos_node::segment::pending::PendingDir;
use custos_node::segment::{seal, BlobStore, Keys};

pub const SEGMENT_BYTES: usize = 2 << 20;

/// True for a quick pass (`-- --smoke` or `CUSTOS_BENCH_SMOKE`).
pub fn smoke() -> bool {
    std::env::args().any(|a| a == "--smoke") || std::env::var_os("CUSTOS_BENCH_SMOKE").is_some()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Incompressible-looking bytes of segment `i` of `round` (the store dedups by content).
pub fn segment(round: usize, i: usize) -> Vec<u8> {
    segment_of(round, i, SEGMENT_BYTES)
}

/// [`segment`] of `bytes` bytes.
pub fn segment_of(round: usize, i: usize, bytes: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(&(round as u64).to_le_bytes());
    h.update(&(i as u64).to_le_bytes());
    h.update(&(bytes as u64).to_le_bytes());
    let mut out = vec![0u8; bytes];
    h.finalize_xof().fill(&mut out);
    out
}

/// Segment `i` of `camera`'s 4 s segments from `start_ms`, holding `data`.
pub fn raw_segment(camera: &str, start_ms: i64, i: usize, data: Vec<u8>) -> RawSegment {
    RawSegment {
        camera: camera.into(),
        start_ms: start_ms + i as i64 * 4000,
        end_ms: start_ms + (i as i64 + 1) * 4000,
        codec: Codec::H264,
        forced_cut: false,
        data,
    }
}

/// An MPEG-TS of `frames` frames of `width`×`height` H.264 at 25 fps and about `kbps`
/// kbit/s (x264 ultrafast, a keyframe every 2 s) of a GStreamer test pattern (`snow`: every
/// pixel changes every frame, so the encoder spends its bitrate; the worst case for a
/// decoder and an encoder).
pub fn footage_ts(pattern: &str, width: u32, height: u32, kbps: u32, frames: u32) -> Vec<u8> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let desc = format!(
        "videotestsrc pattern={pattern} num-buffers={frames} ! video/x-raw,width={width},height={height},framerate=25/1 ! \
         x264enc bitrate={kbps} key-int-max=50 speed-preset=ultrafast tune=zerolatency ! h264parse ! mpegtsmux ! \
         appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gstreamer_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut ts = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        ts.extend_from_slice(s.buffer().unwrap().map_readable().unwrap().as_slice());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    ts
}

/// One node's storage: blob store, sealing context and catalog (node id 1).
pub struct OneNode {
    pub dir: tempfile::TempDir,
    pub keys: Arc<Keys>,
    pub store: Arc<BlobStore>,
    pub ctx: Arc<SealContext>,
    pub meta: Meta,
}

impl OneNode {
    /// Under `CUSTOS_BENCH_DIR` (default `target/`), so it is on the disk being measured.
    pub fn open(rt: &tokio::runtime::Runtime) -> OneNode {
        let dir =
            tempfile::tempdir_in(std::env::var_os("CUSTOS_BENCH_DIR").unwrap_or_else(|| "target".into())).unwrap();
        let id = seal::generate_identity();
        let keys = Arc::new(Keys::new(std::slice::from_ref(&id.recipient), &id.secret).unwrap());
        let (store, _) = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let store = Arc::new(store);
        let pending = Arc::new(PendingDir::open(&dir.path().join("pending")).unwrap());
        let ctx = Arc::new(SealContext { node_id: 1, keys: keys.clone(), store: store.clone(), pending });
        let meta =
            rt.block_on(Meta::start(1, &dir.path().join("meta"), "127.0.0.1:1".into(), Arc::new(SystemClock))).unwrap();
        OneNode { dir, keys, store, ctx, meta }
    }
}
