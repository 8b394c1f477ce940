//! Generated gRPC types and services for Custos. No logic lives here: conversions to
//! domain types belong to `custos-node::server` and `custos-client`.

/// `custos.v1`: the client-facing API.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("custos.v1");
}
