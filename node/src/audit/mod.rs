//! The audit log: every footage access, every denial and every administrative change,
//! hash-chained. The entry format and chain check live in `custos-evidence`, shared with
//! the client so `custos audit verify` recomputes the chain without trusting the node.
//! Entries are appended only by the Raft state machine (`meta::state`), which assigns
//! `seq` and `prev` deterministically.

pub use custos_evidence::{
    entry_hash, seal_entry, verify_chain, AuditBody, AuditEvent, AuditRecord, ChainBreak, AUDIT_DOMAIN, GENESIS,
};
