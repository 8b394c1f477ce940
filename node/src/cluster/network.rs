//! openraft's network: each Raft RPC is postcard-encoded into one `Peer.Raft` call over
//! mutual TLS. A call that cannot reach the peer is reported `Unreachable` (openraft backs
//! off); an error the peer's Raft returned is passed back as a remote error.

use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::peers::Peers;
use crate::meta::network::{Forwarder, KIND_APPEND, KIND_SNAPSHOT, KIND_VOTE};
use crate::meta::schema::decode_message;
use crate::meta::types::{encode, NodeId, TypeConfig};

/// Creates a [`PeerNetwork`] per target.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    pub peers: Peers,
}

/// The connection to one peer.
#[derive(Debug)]
pub struct PeerNetwork {
    peers: Peers,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PeerNetwork { peers: self.peers.clone(), target, addr: node.addr.clone() }
    }
}

impl PeerNetwork {
    async fn call<Req, Resp, E>(
        &self,
        kind: &str,
        rpc: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        Result<Resp, E>: DeserializeOwned,
    {
        let unreachable = |m: String| RPCError::Unreachable(Unreachable::new(&std::io::Error::other(m)));
        let mut client = self.peers.client(&self.addr).map_err(|e| unreachable(e.to_string()))?;
        let mut req =
            tonic::Request::new(custos_proto::v1::RaftMessage { kind: kind.to_string(), payload: encode(rpc) });
        req.set_timeout(option.hard_ttl());
        let call = tokio::time::timeout(option.hard_ttl(), client.raft(req));
        let reply = match call.await {
            Err(_) => {
                return Err(unreachable(format!(
                    "node {} at {}: no answer within {:?}",
                    self.target,
                    self.addr,
                    option.hard_ttl()
                )))
            }
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(s)) if s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::DeadlineExceeded => {
                return Err(unreachable(format!("node {} at {}: {}", self.target, self.addr, s.message())))
            }
            Ok(Err(s)) => {
                return Err(RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
                    "node {} at {}: {}",
                    self.target,
                    self.addr,
                    s.message()
                )))))
            }
        };
        let res: Result<Resp, E> = decode_message(&reply.payload).map_err(|e| {
            RPCError::Network(NetworkError::new(&std::io::Error::other(format!("undecodable Raft reply: {e}"))))
        })?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(KIND_APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call(KIND_SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(KIND_VOTE, &rpc, &option).await
    }
}

impl Forwarder for NetworkFactory {
    fn forward(&self, addr: &str, payload: Vec<u8>, timeout: Duration) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let client = self.peers.client(addr);
        Box::pin(async move {
            let mut client = client.map_err(|e| e.to_string())?;
            let mut r = tonic::Request::new(custos_proto::v1::ProposeRequest { payload });
            r.set_timeout(timeout);
            let reply = client.propose(r).await.map_err(|s| s.message().to_string())?;
            Ok(reply.into_inner().payload)
        })
    }
}
