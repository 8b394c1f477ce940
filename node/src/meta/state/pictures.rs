//! Reference stills of cameras for picture checks (`crate::picture`).

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::types::{PictureStill, RejectKind, Response};

/// Largest thumbnail a still may carry (bytes): the picture module's 32×18, with room.
pub const STILL_BYTES_MAX: usize = 4096;

/// Stores a camera's first reference still, or drops its reference (`None`, a confirmed
/// change) so its recorder takes a new one.
pub(super) fn set_reference(db: &DB, batch: &mut WriteBatch, camera: &str, still: Option<&PictureStill>) -> Response {
    match CAMERAS.get(db, camera) {
        Ok(Some(_)) => {}
        Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("camera {camera} does not exist")),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    let Some(still) = still else {
        PICTURE_REFS.delete(db, batch, camera);
        return Response::Ok;
    };
    if still.thumb.is_empty() || still.thumb.len() > STILL_BYTES_MAX {
        return Response::Rejected(
            RejectKind::InvalidArgument,
            format!("a reference still holds 1 to {STILL_BYTES_MAX} bytes"),
        );
    }
    match PICTURE_REFS.get(db, camera) {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                format!("camera {camera} has a reference still; only `custos camera confirm` replaces it"),
            )
        }
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    PICTURE_REFS.put(db, batch, camera, still);
    Response::Ok
}
