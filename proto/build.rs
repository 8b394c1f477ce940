//! Generates the tonic code for the `.proto` files; no other logic lives here.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // Every message serialises to JSON for the web console (`custos_node::web`).
    tonic_prost_build::configure().type_attribute(".", "#[derive(serde::Serialize)]").compile_protos(
        &[
            "proto/custos/v1/footage.proto",
            "proto/custos/v1/admin.proto",
            "proto/custos/v1/audit.proto",
            "proto/custos/v1/holds.proto",
            "proto/custos/v1/cluster.proto",
            "proto/custos/v1/peer.proto",
            "proto/custos/v1/exports.proto",
            "proto/custos/v1/operations.proto",
        ],
        &["proto"],
    )?;
    Ok(())
}
