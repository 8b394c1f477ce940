//! A minimal MPEG-TS writer for one video elementary stream (ISO/IEC 13818-1).
//!
//! Each segment is written as its own transport stream: PAT, PMT and an SDT naming the
//! camera first, then one PES packet per access unit, with a PCR and the random-access
//! flag on keyframes. That makes every segment independently playable, and because
//! timestamps come from wall-clock time, segments of one camera concatenate into a
//! continuous stream.
//!
//! The SDT's service name is the camera id. Besides telling a player (and a court) which
//! camera a file came from, it keeps segments of different cameras distinct even when
//! two cameras are fed the same stream: blobs are addressed by content, and two cameras
//! must never share one.

/// Transport packet size.
pub const TS_PACKET: usize = 188;
const PID_PAT: u16 = 0x0000;
const PID_PMT: u16 = 0x1000;
const PID_VIDEO: u16 = 0x0100;
const PID_SDT: u16 = 0x0011;
/// The SDT's provider name.
const PROVIDER: &[u8] = b"Custos";
/// Longest service name that keeps the SDT in one packet (camera ids are at most 64).
const SERVICE_NAME_MAX: usize = 120;
/// PCR runs this far ahead of the first decode time (100 ms), as a muxer's buffer would.
const PCR_LEAD_90K: u64 = 9_000;
const WRAP_33: u64 = 1 << 33;

/// Stream type of the video elementary stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    H264 = 0x1B,
    H265 = 0x24,
}

/// One access unit to write: 90 kHz timestamps (not yet wrapped) and the payload.
#[derive(Debug)]
pub struct Frame<'a> {
    pub pts_90k: u64,
    pub dts_90k: Option<u64>,
    pub keyframe: bool,
    pub data: &'a [u8],
}

fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

struct Writer {
    out: Vec<u8>,
    cc_video: u8,
}

impl Writer {
    fn psi(&mut self, pid: u16, section: &[u8]) {
        let mut p = Vec::with_capacity(TS_PACKET);
        p.extend_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0x00]);
        p.extend_from_slice(section);
        let crc = crc32_mpeg2(section);
        p.extend_from_slice(&crc.to_be_bytes());
        p.resize(TS_PACKET, 0xFF);
        self.out.extend_from_slice(&p);
    }

    fn pat(&mut self) {
        // table_id, syntax|len, tsid, version/current, section numbers, program 1 -> PMT PID
        let s =
            [0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xE0 | (PID_PMT >> 8) as u8, PID_PMT as u8];
        self.psi(PID_PAT, &s);
    }

    fn pmt(&mut self, st: StreamType) {
        let s = [
            0x02,
            0xB0,
            0x12,
            0x00,
            0x01,
            0xC1,
            0x00,
            0x00,
            0xE0 | (PID_VIDEO >> 8) as u8,
            PID_VIDEO as u8, // PCR PID
            0xF0,
            0x00, // program info length
            st as u8,
            0xE0 | (PID_VIDEO >> 8) as u8,
            PID_VIDEO as u8,
            0xF0,
            0x00,
        ];
        self.psi(PID_PMT, &s);
    }

    /// Service description table (ETSI EN 300 468): one service, named `name`.
    fn sdt(&mut self, name: &str) {
        let mut end = name.len().min(SERVICE_NAME_MAX);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let name = &name.as_bytes()[..end];
        let mut desc = vec![0x48, 0, 0x01, PROVIDER.len() as u8];
        desc.extend_from_slice(PROVIDER);
        desc.push(name.len() as u8);
        desc.extend_from_slice(name);
        desc[1] = (desc.len() - 2) as u8;
        let section_length = 8 + 5 + desc.len() + 4;
        let mut s = vec![0x42, 0xF0 | (section_length >> 8) as u8, section_length as u8];
        // transport_stream_id, version/current, section numbers, original_network_id, reserved
        s.extend_from_slice(&[0x00, 0x01, 0xC1, 0x00, 0x00, 0xFF, 0x01, 0xFF]);
        // service_id 1 (the PAT's program), no EIT, running, not scrambled
        s.extend_from_slice(&[0x00, 0x01, 0xFC, 0x80 | (desc.len() >> 8) as u8, desc.len() as u8]);
        s.extend_from_slice(&desc);
        self.psi(PID_SDT, &s);
    }

    fn pes(&mut self, f: &Frame<'_>) {
        let pts = f.pts_90k % WRAP_33;
        let dts = f.dts_90k.map(|d| d % WRAP_33).filter(|&d| d != pts);
        let mut pes = Vec::with_capacity(f.data.len() + 20);
        pes.extend_from_slice(&[0x00, 0x00, 0x01, 0xE0]);
        let header_len = if dts.is_some() { 10 } else { 5 };
        let len = 3 + header_len + f.data.len();
        // Video PES may leave the length unbounded (0) when it does not fit 16 bits.
        let len_field = if len <= 0xFFFF { len as u16 } else { 0 };
        pes.extend_from_slice(&len_field.to_be_bytes());
        pes.push(0x80);
        pes.push(if dts.is_some() { 0xC0 } else { 0x80 });
        pes.push(header_len as u8);
        write_timestamp(&mut pes, if dts.is_some() { 0x3 } else { 0x2 }, pts);
        if let Some(d) = dts {
            write_timestamp(&mut pes, 0x1, d);
        }
        pes.extend_from_slice(f.data);
        let pcr = (dts.unwrap_or(pts) + WRAP_33 - PCR_LEAD_90K) % WRAP_33;
        self.payload(&pes, Some(pcr), f.keyframe);
    }

    fn payload(&mut self, data: &[u8], pcr_90k: Option<u64>, random_access: bool) {
        let mut pos = 0;
        let mut first = true;
        while pos < data.len() {
            let mut af: Vec<u8> = Vec::new();
            if first {
                let mut flags = 0u8;
                if random_access {
                    flags |= 0x40;
                }
                if pcr_90k.is_some() {
                    flags |= 0x10;
                }
                af.push(flags);
                if let Some(base) = pcr_90k {
                    af.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        (((base & 1) as u8) << 7) | 0x7E,
                        0x00,
                    ]);
                }
            }
            let af_total = if af.is_empty() { 0 } else { 1 + af.len() };
            let remaining = data.len() - pos;
            if remaining < TS_PACKET - 4 - af_total {
                let need = TS_PACKET - 4 - remaining; // bytes the adaptation field must take
                if af.is_empty() && need >= 2 {
                    af.push(0x00);
                }
                if need >= 2 {
                    af.resize(need - 1, 0xFF);
                }
            }
            let has_af = !af.is_empty() || (remaining < TS_PACKET - 4 && af_total == 0);
            let pusi = if first { 0x40 } else { 0x00 };
            self.out.push(0x47);
            self.out.push(pusi | (PID_VIDEO >> 8) as u8);
            self.out.push(PID_VIDEO as u8);
            self.out.push(if has_af { 0x30 } else { 0x10 } | self.cc_video);
            self.cc_video = (self.cc_video + 1) & 0x0F;
            if has_af {
                self.out.push(af.len() as u8);
                self.out.extend_from_slice(&af);
            }
            let room = TS_PACKET - 4 - if has_af { 1 + af.len() } else { 0 };
            let n = room.min(remaining);
            self.out.extend_from_slice(&data[pos..pos + n]);
            pos += n;
            first = false;
        }
    }
}

fn write_timestamp(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    out.push((prefix << 4) | (((ts >> 30) & 0x07) as u8) << 1 | 1);
    out.push((ts >> 22) as u8);
    out.push((((ts >> 15) & 0x7F) as u8) << 1 | 1);
    out.push((ts >> 7) as u8);
    out.push(((ts & 0x7F) as u8) << 1 | 1);
}

/// Writes one self-contained transport stream of camera `camera` holding `frames`.
pub fn mux_segment(stream_type: StreamType, camera: &str, frames: &[Frame<'_>]) -> Vec<u8> {
    let payload: usize = frames.iter().map(|f| f.data.len()).sum();
    let mut w = Writer { out: Vec::with_capacity(payload + payload / 20 + 4 * TS_PACKET), cc_video: 0 };
    w.pat();
    w.pmt(stream_type);
    w.sdt(camera);
    for f in frames {
        w.pes(f);
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        // CRC-32/MPEG-2 of "123456789" is 0x0376E6E7.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn the_sdt_names_the_camera_and_keeps_cameras_apart() {
        let f = [Frame { pts_90k: 900_000, dts_90k: None, keyframe: true, data: &[9u8; 500] }];
        let a = mux_segment(StreamType::H264, "door", &f);
        let b = mux_segment(StreamType::H264, "ward", &f);
        assert_ne!(a, b, "same frames, different cameras, different bytes");
        let sdt = &a[2 * TS_PACKET..3 * TS_PACKET];
        assert_eq!(((u16::from(sdt[1]) & 0x1F) << 8) | u16::from(sdt[2]), PID_SDT);
        let section = &sdt[5..];
        assert_eq!(section[0], 0x42);
        let len = (usize::from(section[1] & 0x0F) << 8) | usize::from(section[2]);
        assert_eq!(crc32_mpeg2(&section[..3 + len]), 0, "a section with its CRC checks to zero");
        assert!(section[..3 + len].windows(4).any(|w| w == b"door"));
        let long = "x".repeat(300);
        assert_eq!(mux_segment(StreamType::H264, &long, &f).len() % TS_PACKET, 0);
    }

    #[test]
    fn packets_are_aligned_and_payload_survives() {
        for size in [1usize, 150, 170, 171, 172, 173, 174, 175, 176, 183, 184, 185, 1000, 65_000, 200_000] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let ts = mux_segment(
                StreamType::H264,
                "lobby",
                &[Frame { pts_90k: 900_000, dts_90k: Some(896_400), keyframe: true, data: &data }],
            );
            assert_eq!(ts.len() % TS_PACKET, 0, "size {size}");
            let mut payload = Vec::new();
            for p in ts.chunks(TS_PACKET).skip(3) {
                assert_eq!(p[0], 0x47);
                let afc = (p[3] >> 4) & 3;
                let start = if afc == 3 { 5 + p[4] as usize } else { 4 };
                assert!(start <= TS_PACKET, "size {size}");
                payload.extend_from_slice(&p[start..]);
            }
            // PES header: 9 bytes + 10 of PTS/DTS.
            assert_eq!(&payload[..4], &[0, 0, 1, 0xE0]);
            assert_eq!(&payload[19..], &data[..], "size {size}");
        }
    }
}
