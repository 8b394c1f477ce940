//! `custos-test-s3`: a real S3 server on loopback for tests and benchmarks, the `s3s-fs`
//! crate serving a directory (each bucket is a subdirectory). Requires the given access
//! key and secret (AWS Signature V4). Prints `ready http://ADDR` once it accepts
//! connections.
//!
//! `custos-test-s3 --root DIR --access-key K --secret-key S [--port 0]`
//!
//! It counts requests by method; `GET /__custos_stats` (unauthenticated, not S3) returns
//! the counts as JSON, for benchmarks that compare request counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

#[derive(Parser)]
#[command(name = "custos-test-s3", about = "S3 server on a directory, for tests (s3s-fs)")]
struct Cli {
    /// Directory holding the buckets (created if missing).
    #[arg(long)]
    root: std::path::PathBuf,
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long)]
    access_key: String,
    #[arg(long)]
    secret_key: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.root)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let fs = s3s_fs::FileSystem::new(&cli.root).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(cli.access_key, cli.secret_key));
        let service = Counting { inner: b.build(), counts: Arc::default() };
        let listener = tokio::net::TcpListener::bind((cli.address.as_str(), cli.port)).await?;
        println!("ready http://{}", listener.local_addr()?);
        let server = ConnBuilder::new(TokioExecutor::new());
        loop {
            let (socket, _) = listener.accept().await?;
            let conn = server.clone().serve_connection(TokioIo::new(socket), service.clone()).into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}

/// Request counts by method: GET, PUT, POST, DELETE, HEAD, other.
const METHODS: [&str; 6] = ["GET", "PUT", "POST", "DELETE", "HEAD", "other"];

/// The S3 service, counting requests.
#[derive(Clone)]
struct Counting {
    inner: s3s::service::S3Service,
    counts: Arc<[AtomicU64; 6]>,
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Counting {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        if req.uri().path() == "/__custos_stats" {
            let body: Vec<String> = METHODS
                .iter()
                .zip(self.counts.iter())
                .map(|(m, c)| format!("\"{m}\":{}", c.load(Ordering::Relaxed)))
                .collect();
            let resp = http::Response::new(s3s::Body::from(format!("{{{}}}", body.join(","))));
            return Box::pin(async move { Ok(resp) });
        }
        let i = METHODS.iter().position(|m| *m == req.method().as_str()).unwrap_or(METHODS.len() - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        Box::pin(async move { hyper::service::Service::call(&inner, req).await })
    }
}
