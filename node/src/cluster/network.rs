//! openraft's network: each Raft RPC is postcard-encoded into one `Peer.Raft` call over
//! mutual TLS. A call that cannot reach the peer is reported `Unreachable` (openraft backs
//! off); an error the peer's Raft returned is passed back as a remote error.

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
use crate::meta::schema::decode_message;
use crate::meta::types::{encode, NodeId, TypeConfig};

/// RPC kinds carried in `RaftMessage.kind`.
pub const KIND_APPEND: &str = "append";
pub const KIND_VOTE: &str = "vote";
pub const KIND_SNAPSHOT: &str = "snapshot";

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

/// Serves one `Peer.Raft` call on this node's Raft.
pub async fn serve(raft: &openraft::Raft<TypeConfig>, kind: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    serve_from(raft, kind, payload, None).await.map(|(reply, _)| reply).map_err(|e| e.to_string())
}

/// Why a Raft message was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeError {
    /// Not a Raft message this node can read.
    Malformed(String),
    /// The message names another sender (the vote's candidate or leader) than the
    /// node whose certificate carried it.
    WrongSender { claimed: NodeId, certified: NodeId },
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Malformed(e) => f.write_str(e),
            ServeError::WrongSender { claimed, certified } => write!(
                f,
                "this Raft message claims to come from node {claimed}, but the caller's certificate is node \
                 {certified}'s; a node speaks only for itself"
            ),
        }
    }
}

/// The node a Raft request speaks for: the candidate of a vote request, the leader of
/// an append or a snapshot.
fn sender(vote: &openraft::Vote<NodeId>) -> Option<NodeId> {
    vote.leader_id().voted_for()
}

/// Like [`serve`], refusing a message whose sender is not `from` (the node id of the
/// caller's certificate) when given. Also says whether the message came from the leader
/// this node follows (an append or a snapshot it accepted, not one refused for a higher
/// vote): that is how a follower knows it is still in touch with its leader.
pub async fn serve_from(
    raft: &openraft::Raft<TypeConfig>,
    kind: &str,
    payload: &[u8],
    from: Option<NodeId>,
) -> Result<(Vec<u8>, bool), ServeError> {
    let check = |vote: &openraft::Vote<NodeId>| match (from, sender(vote)) {
        (Some(certified), claimed) if claimed != Some(certified) => {
            Err(ServeError::WrongSender { claimed: claimed.unwrap_or(0), certified })
        }
        _ => Ok(()),
    };
    Ok(match kind {
        KIND_APPEND => {
            let req: AppendEntriesRequest<TypeConfig> = decode_message(payload).map_err(ServeError::Malformed)?;
            check(&req.vote)?;
            let r = raft.append_entries(req).await;
            let from_leader = matches!(&r, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_)));
            (encode(&r), from_leader)
        }
        KIND_VOTE => {
            let req: VoteRequest<NodeId> = decode_message(payload).map_err(ServeError::Malformed)?;
            check(&req.vote)?;
            (encode(&raft.vote(req).await), false)
        }
        KIND_SNAPSHOT => {
            let req: InstallSnapshotRequest<TypeConfig> = decode_message(payload).map_err(ServeError::Malformed)?;
            check(&req.vote)?;
            let r = raft.install_snapshot(req).await;
            let from_leader = r.is_ok();
            (encode(&r), from_leader)
        }
        other => return Err(ServeError::Malformed(format!("unknown Raft RPC kind {other:?}"))),
    })
}
