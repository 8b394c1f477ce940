//! The `custos` package hosts the black-box tests (`tests/`), the benchmarks
//! (`benches/`) and `custos-test-camera`, a real RTSP server for them. It has no library
//! code of its own.
