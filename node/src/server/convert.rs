//! Conversions between generated proto types and domain types. Domain code never sees
//! prost structs; this module is the only place both meet.

use custos_proto::v1 as pb;

use crate::meta::{Camera, SegmentClock, SegmentRecord, TokenRecord, User};

pub fn camera(c: &Camera) -> pb::Camera {
    pb::Camera {
        id: c.id.clone(),
        name: c.name.clone(),
        source: crate::ingest::redact(&c.source),
        recorder: c.recorder,
        added_ms: c.added_ms,
        sensitive: c.sensitive,
        privacy_zones: vec![],
        standby: 0,
        standby_wanted: false,
    }
}

pub fn segment(s: &SegmentRecord) -> pb::Segment {
    pb::Segment {
        camera: s.camera.clone(),
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        bytes: s.bytes,
        blob_bytes: s.blob_bytes,
        content_hash: s.content_hash.to_vec(),
        blob_hash: s.blob_hash.to_vec(),
        codec: s.codec.as_str().to_string(),
        replicas: s.replicas.clone(),
        clock_skewed: false,
        clock_offset_ms: 0,
    }
}

/// A segment with its clock flag, if it was recorded while its recorder was skewed.
pub fn flagged_segment(s: &SegmentRecord, clock: Option<&SegmentClock>) -> pb::Segment {
    let mut out = segment(s);
    if let Some(c) = clock {
        (out.clock_skewed, out.clock_offset_ms) = (true, c.offset_ms);
    }
    out
}

pub fn user(u: &User) -> pb::User {
    pb::User {
        name: u.name.clone(),
        role: u.role.as_str().into(),
        case_id: u.case.clone().unwrap_or_default(),
        disabled: u.disabled,
        grants: u.grants.clone(),
        created_ms: u.created_ms,
    }
}

pub fn token(t: &TokenRecord) -> pb::Token {
    pb::Token {
        id: t.id.clone(),
        user: t.user.clone(),
        created_ms: t.created_ms,
        expires_ms: t.expires_ms,
        revoked: t.revoked,
        issued_by: t.issued_by.clone(),
    }
}
