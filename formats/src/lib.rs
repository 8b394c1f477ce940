//! Pure formats and checks for everything that crosses Custos' edges: the keyframe
//! segmenter and MPEG-TS writer and reader that every recorded segment passes through,
//! and the validators every request field passes. They do no I/O and need no runtime,
//! so the fuzz targets in `fuzz/` drive them directly.

pub mod fields;
#[doc(hidden)]
pub mod fuzzing;
pub mod mpegts;
pub mod segmenter;
