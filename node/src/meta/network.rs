//! The Raft network as this node's metadata group sees it: the messages peers send it
//! (served here, whatever carries them) and the two ways out, Raft's own messages
//! ([`RaftNetworkFactory`]) and writes forwarded to the leader ([`Forwarder`]). The
//! cluster layer carries both over mutual-TLS gRPC (`cluster::network`); [`NoPeers`] is
//! the network of a group of one.

use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;

use super::schema::decode_message;
use super::types::{encode, NodeId, TypeConfig};

/// RPC kinds carried in `RaftMessage.kind`.
pub const KIND_APPEND: &str = "append";
pub const KIND_VOTE: &str = "vote";
pub const KIND_SNAPSHOT: &str = "snapshot";

/// Sends a write this node cannot commit itself to the leader (`Peer.Propose`).
pub trait Forwarder: Send + Sync + 'static {
    /// Sends `payload` (the encoded command and audit event) to the leader at `addr`,
    /// giving it `timeout`; returns the leader's encoded reply, or why it was not had.
    fn forward(&self, addr: &str, payload: Vec<u8>, timeout: Duration) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// The network of a group with no peers (tests, tools, benchmarks in one process): every
/// peer is unreachable.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

fn no_peer<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other("this node has no network to its peers")))
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _: NodeId, _: &BasicNode) -> Self::Network {
        NoPeers
    }
}

impl RaftNetwork<TypeConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _: AppendEntriesRequest<TypeConfig>,
        _: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(no_peer())
    }

    async fn install_snapshot(
        &mut self,
        _: InstallSnapshotRequest<TypeConfig>,
        _: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        Err(no_peer())
    }

    async fn vote(
        &mut self,
        _: VoteRequest<NodeId>,
        _: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(no_peer())
    }
}

impl Forwarder for NoPeers {
    fn forward(&self, addr: &str, _: Vec<u8>, _: Duration) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let addr = addr.to_string();
        Box::pin(async move {
            Err(format!("this node has no network to its peers, so it cannot reach the leader at {addr}"))
        })
    }
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

/// Serves one `Peer.Raft` call on this node's Raft, refusing a message whose sender is not `from` (the node id of the
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
