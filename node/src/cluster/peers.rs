//! Channels to other nodes. Every node-to-node call presents this node's certificate and
//! verifies the peer's against the cluster CA (mutual TLS). Channels are created lazily
//! per address and reconnect on their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos_proto::v1::peer_client::PeerClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{Error, Result};

/// Largest message exchanged between nodes (Raft batches, blob chunks).
pub const PEER_MESSAGE_MAX: usize = 64 * 1024 * 1024;
/// How long a connection attempt to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// TLS material for node-to-node calls.
#[derive(Clone)]
pub struct PeerTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A cache of channels to peers, by address.
#[derive(Clone)]
pub struct Peers {
    tls: Option<PeerTls>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").field("tls", &self.tls.is_some()).finish_non_exhaustive()
    }
}

impl Peers {
    /// Peers reached over mutual TLS, or (without `tls`) not at all: a plaintext node
    /// cannot be part of a cluster.
    pub fn new(tls: Option<PeerTls>) -> Peers {
        Peers { tls, channels: Arc::default() }
    }

    /// A client for the node at `addr`.
    pub fn client(&self, addr: &str) -> Result<PeerClient<Channel>> {
        let ch = self.channel(addr)?;
        Ok(PeerClient::new(ch).max_decoding_message_size(PEER_MESSAGE_MAX).max_encoding_message_size(PEER_MESSAGE_MAX))
    }

    fn channel(&self, addr: &str) -> Result<Channel> {
        let mut map = self.channels.lock().expect("peer channel map poisoned");
        if let Some(ch) = map.get(addr) {
            return Ok(ch.clone());
        }
        let tls = self.tls.as_ref().ok_or_else(|| {
            Error::Unavailable("this node serves without TLS (insecure_plaintext), so it cannot talk to peers".into())
        })?;
        let cfg = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&tls.ca_pem))
            .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
            .domain_name(host_of(addr));
        let ep = Endpoint::from_shared(format!("https://{addr}"))
            .map_err(|e| Error::InvalidArgument(format!("peer address {addr:?}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .tls_config(cfg)
            .map_err(|e| Error::Internal(format!("peer TLS configuration: {e}")))?;
        let ch = ep.connect_lazy();
        map.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
pub fn host_of(addr: &str) -> String {
    addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr).trim_matches(['[', ']']).to_string()
}

/// Maps a failed peer call to an error that names the peer.
pub fn peer_error(addr: &str, what: &str, s: tonic::Status) -> Error {
    Error::Unavailable(format!("{what} on node {addr}: {}", s.message()))
}
