//! Reference stills of cameras for picture checks (`crate::picture`).

use rocksdb::{WriteBatch, DB};

use super::get_decoded;
use crate::meta::db::{cf, CF_CAMERAS, CF_PICTURE_REFS};
use crate::meta::types::{encode, Camera, PictureStill, RejectKind, Response};

/// Largest thumbnail a still may carry (bytes): the picture module's 32×18, with room.
pub const STILL_BYTES_MAX: usize = 4096;

/// Stores a camera's first reference still, or drops its reference (`None`, a confirmed
/// change) so its recorder takes a new one.
pub(super) fn set_reference(db: &DB, batch: &mut WriteBatch, camera: &str, still: Option<&PictureStill>) -> Response {
    match get_decoded::<Camera>(db, CF_CAMERAS, camera.as_bytes()) {
        Ok(Some(_)) => {}
        Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("camera {camera} does not exist")),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    let Some(still) = still else {
        batch.delete_cf(cf(db, CF_PICTURE_REFS), camera.as_bytes());
        return Response::Ok;
    };
    if still.thumb.is_empty() || still.thumb.len() > STILL_BYTES_MAX {
        return Response::Rejected(
            RejectKind::InvalidArgument,
            format!("a reference still holds 1 to {STILL_BYTES_MAX} bytes"),
        );
    }
    match get_decoded::<PictureStill>(db, CF_PICTURE_REFS, camera.as_bytes()) {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                format!("camera {camera} has a reference still; only `custos camera confirm` replaces it"),
            )
        }
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    batch.put_cf(cf(db, CF_PICTURE_REFS), camera.as_bytes(), encode(still));
    Response::Ok
}
