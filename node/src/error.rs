//! The node's error type and its single mapping to `tonic::Status`.
//!
//! Domain code returns [`Error`]; only [`Error::into_status`] decides which gRPC code
//! a client sees, so the mapping is reviewed in one place.

use std::path::PathBuf;

/// Everything that can go wrong inside the node, by kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something malformed; the message says what and how to fix it.
    #[error("{0}")]
    InvalidArgument(String),

    /// The named thing does not exist.
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },

    /// The thing already exists and creating it again would change it.
    #[error("{what} already exists: {id}")]
    AlreadyExists { what: &'static str, id: String },

    /// No valid credentials came with the request.
    #[error("{0}")]
    Unauthenticated(String),

    /// A stored blob does not match the hash the catalog recorded for it.
    #[error(
        "integrity check failed for segment {camera}@{start_ms}: {detail}; the stored copy is \
         corrupt or was tampered with, nothing from it was served"
    )]
    CorruptBlob { camera: String, start_ms: i64, detail: String },

    /// The backup store (S3) refused or failed a request; the message says what to check.
    #[error("backup store: {0}")]
    Store(String),

    /// Restored or backed-up data does not verify (a broken audit chain, a snapshot or
    /// object that does not match its hashes).
    #[error("integrity check failed: {0}")]
    Integrity(String),

    /// A blob the catalog lists is missing from the store.
    #[error("blob {hash} of segment {camera}@{start_ms} is missing from this node's store")]
    MissingBlob { camera: String, start_ms: i64, hash: String },

    /// The metadata group cannot commit right now (no leader, no quorum, shutting down).
    #[error("metadata is unavailable: {0}")]
    Unavailable(String),

    /// Filesystem trouble, with the path it happened on.
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },

    /// RocksDB trouble.
    #[error("catalog database: {0}")]
    Db(#[from] rocksdb::Error),

    /// Encryption or decryption failed.
    #[error("sealing: {0}")]
    Crypto(String),

    /// An invariant inside the node broke; this is a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The node's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// The one place that decides what a gRPC client sees for each kind of error.
    pub fn into_status(self) -> tonic::Status {
        use tonic::Status;
        match self {
            Error::InvalidArgument(m) => Status::invalid_argument(m),
            e @ Error::NotFound { .. } => Status::not_found(e.to_string()),
            e @ Error::AlreadyExists { .. } => Status::already_exists(e.to_string()),
            Error::Unauthenticated(m) => Status::unauthenticated(m),
            e @ (Error::CorruptBlob { .. } | Error::MissingBlob { .. } | Error::Integrity(_)) => {
                Status::data_loss(e.to_string())
            }
            Error::Unavailable(m) => Status::unavailable(m),
            e @ Error::Store(_) => Status::unavailable(e.to_string()),
            e => {
                tracing::error!(error = %e, "request failed");
                Status::internal(e.to_string())
            }
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.into_status()
    }
}
