//! What the single-node benchmarks share: a blob store, a sealing context and a
//! single-node Raft catalog in a temporary directory, synthetic segments, and the median.
#![allow(dead_code)] // each benchmark uses its own subset

use std::sync::Arc;

use custos_node::clock::SystemClock;
use custos_node::meta::Meta;
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
    let mut h = blake3::Hasher::new();
    h.update(&(round as u64).to_le_bytes());
    h.update(&(i as u64).to_le_bytes());
    let mut out = vec![0u8; SEGMENT_BYTES];
    h.finalize_xof().fill(&mut out);
    out
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
