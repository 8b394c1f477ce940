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

/// 90 kHz clock ticks in `ns` nanoseconds (without overflow for wall-clock times).
pub fn ns_to_90k(ns: u64) -> u64 {
    ns / 100_000 * 9 + ns % 100_000 * 9 / 100_000
}

/// The frames of a segmenter cut, stamped by `wall_ns` (pipeline time to wall-clock ns).
pub fn frames_of(units: &[crate::segmenter::AccessUnit], wall_ns: impl Fn(u64) -> u64) -> Vec<Frame<'_>> {
    units
        .iter()
        .map(|u| Frame {
            pts_90k: ns_to_90k(wall_ns(u.pts_ns)),
            dts_90k: u.dts_ns.map(|d| ns_to_90k(wall_ns(d))),
            keyframe: u.keyframe,
            data: &u.data,
        })
        .collect()
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

/// One access unit read back from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFrame {
    pub pts_90k: u64,
    pub dts_90k: Option<u64>,
    /// The packet that started it carried the random-access flag.
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// What [`demux`] finds in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demuxed {
    /// The PMT's stream type for the video stream (0x1B H.264, 0x24 H.265).
    pub stream_type: u8,
    /// The SDT's service name: the camera id, for segments Custos wrote.
    pub service_name: Option<String>,
    pub frames: Vec<ReadFrame>,
}

fn ts_33(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 0x07) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

/// A PSI section from a payload that starts one: checks its length and CRC and returns
/// it without the CRC.
fn section(payload: &[u8], what: &str) -> Result<Vec<u8>, String> {
    let pointer = *payload.first().ok_or_else(|| format!("{what}: empty payload"))? as usize;
    let s =
        payload.get(1 + pointer..).filter(|s| s.len() >= 3).ok_or_else(|| format!("{what}: pointer past packet"))?;
    let len = (usize::from(s[1] & 0x0F) << 8) | usize::from(s[2]);
    if len < 9 || 3 + len > s.len() {
        return Err(format!(
            "{what}: section length {len} does not fit one packet (this reader reads what Custos writes)"
        ));
    }
    if crc32_mpeg2(&s[..3 + len]) != 0 {
        return Err(format!("{what}: CRC mismatch"));
    }
    Ok(s[..3 + len - 4].to_vec())
}

/// Parses one PES packet into a frame.
fn pes_frame(buf: &[u8], keyframe: bool) -> Result<ReadFrame, String> {
    if buf.len() < 9 || buf[..3] != [0, 0, 1] || !(0xE0..=0xEF).contains(&buf[3]) {
        return Err("PES packet does not start with a video stream start code".into());
    }
    let declared = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    if declared != 0 && declared + 6 != buf.len() {
        return Err(format!("PES packet declares {} bytes but carries {}", declared + 6, buf.len()));
    }
    let flags = buf[7] >> 6;
    let header_len = usize::from(buf[8]);
    let header = buf.get(9..9 + header_len).ok_or("PES header runs past the packet")?;
    let need = match flags {
        2 => 5,
        3 => 10,
        _ => return Err(format!("PES packet has timestamp flags {flags:#b}; every frame needs a PTS")),
    };
    if header.len() < need {
        return Err("PES header is too short for its timestamps".into());
    }
    let pts_90k = ts_33(&header[..5]);
    let dts_90k = (flags == 3).then(|| ts_33(&header[5..10]));
    Ok(ReadFrame { pts_90k, dts_90k, keyframe, data: buf[9 + header_len..].to_vec() })
}

/// Reads back a single-video-stream transport stream: checks packet alignment, sync
/// bytes, PSI CRCs and the video stream's continuity counters, and returns every frame.
/// It reads what [`mux_segment`] writes (one-packet sections, one video stream) and
/// refuses anything else with a message naming the packet.
pub fn demux(ts: &[u8]) -> Result<Demuxed, String> {
    if !ts.len().is_multiple_of(TS_PACKET) {
        return Err(format!("{} bytes is not a whole number of {TS_PACKET}-byte packets", ts.len()));
    }
    let mut pmt_pid = None;
    let mut video: Option<(u16, u8)> = None;
    let mut service_name = None;
    let mut cc: Option<u8> = None;
    let mut open: Option<(Vec<u8>, bool)> = None;
    let mut frames = Vec::new();
    for (i, p) in ts.chunks_exact(TS_PACKET).enumerate() {
        let at = |m: String| format!("packet {i}: {m}");
        if p[0] != 0x47 {
            return Err(at(format!("sync byte {:#04x}, expected 0x47", p[0])));
        }
        if p[1] & 0x80 != 0 || p[3] & 0xC0 != 0 {
            return Err(at("transport error or scrambling bits set".into()));
        }
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let mut start = 4;
        let mut random_access = false;
        if afc == 0 {
            return Err(at("reserved adaptation field control 0".into()));
        }
        if afc & 2 != 0 {
            let len = usize::from(p[4]);
            if 5 + len > TS_PACKET {
                return Err(at(format!("adaptation field of {len} bytes overruns the packet")));
            }
            random_access = len > 0 && p[5] & 0x40 != 0;
            start = 5 + len;
        }
        let payload = if afc & 1 != 0 { &p[start..] } else { &p[TS_PACKET..] };
        if pid == PID_PAT && pusi {
            let s = section(payload, "PAT").map_err(at)?;
            if s[0] != 0x00 {
                return Err(at(format!("PAT table id {:#04x}", s[0])));
            }
            pmt_pid = s[8..]
                .chunks_exact(4)
                .find(|e| e[0] != 0 || e[1] != 0)
                .map(|e| (u16::from(e[2] & 0x1F) << 8) | u16::from(e[3]));
        } else if Some(pid) == pmt_pid && pusi {
            let s = section(payload, "PMT").map_err(at)?;
            if s[0] != 0x02 || s.len() < 12 {
                return Err(at("not a PMT".into()));
            }
            let info = (usize::from(s[10] & 0x0F) << 8) | usize::from(s[11]);
            let mut k = 12 + info;
            while k + 5 <= s.len() {
                let (st, es_pid) = (s[k], (u16::from(s[k + 1] & 0x1F) << 8) | u16::from(s[k + 2]));
                if matches!(st, 0x1B | 0x24) && video.is_none() {
                    video = Some((es_pid, st));
                }
                k += 5 + ((usize::from(s[k + 3] & 0x0F) << 8) | usize::from(s[k + 4]));
            }
        } else if pid == PID_SDT && pusi {
            let s = section(payload, "SDT").map_err(at)?;
            // Services start after the 11-byte header; the first one's descriptors.
            if s[0] == 0x42 && s.len() >= 16 {
                let loop_len = (usize::from(s[14] & 0x0F) << 8) | usize::from(s[15]);
                let desc = &s[16..s.len().min(16 + loop_len)];
                if desc.len() >= 4 && desc[0] == 0x48 {
                    let provider = usize::from(desc[3]);
                    if let Some(&n) = desc.get(4 + provider) {
                        let name = desc.get(5 + provider..5 + provider + usize::from(n));
                        service_name = name.map(|b| String::from_utf8_lossy(b).into_owned());
                    }
                }
            }
        } else if video.is_some_and(|(v, _)| v == pid) {
            if afc & 1 != 0 {
                let c = p[3] & 0x0F;
                if cc.is_some_and(|prev| (prev + 1) & 0x0F != c) {
                    return Err(at(format!("continuity counter {c} after {}: a packet is missing", cc.unwrap_or(0))));
                }
                cc = Some(c);
            }
            if pusi {
                if let Some((buf, key)) = open.take() {
                    frames.push(pes_frame(&buf, key).map_err(at)?);
                }
                open = Some((payload.to_vec(), random_access));
            } else {
                let (buf, _) = open.as_mut().ok_or_else(|| at("video payload before any PES start".into()))?;
                buf.extend_from_slice(payload);
            }
        } else if pid == PID_VIDEO && video.is_none() {
            return Err(at("video packet before the PMT that declares it".into()));
        }
    }
    if let Some((buf, key)) = open.take() {
        frames.push(pes_frame(&buf, key).map_err(|m| format!("last frame: {m}"))?);
    }
    let (_, stream_type) = video.ok_or("no PMT declaring an H.264 or H.265 stream")?;
    Ok(Demuxed { stream_type, service_name, frames })
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
