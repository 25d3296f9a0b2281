//! The transaction log's on-disk format: segment header, record framing, and the scanner
//! that reads a segment back and classifies how it ends. Pure: no I/O (see `FORMAT.md`).
//!
//! Owned by nobody at run time: the server's log role encodes records with
//! [`encode_record`] into its write buffers, and recovery (or `ringkeeper log-verify`)
//! reads a whole segment's bytes through [`SegmentScanner`].
//! In: txn bytes from [`crate::txn::encode`] (already aligned, written verbatim) and
//! segment bytes from disk. Out: framed bytes, or validated [`Record`]s and a [`SegmentEnd`].
//! Invariants: every payload starts 16-byte aligned relative to the segment start (so a
//! 16-aligned read buffer gives rkyv aligned archives in place); a record is yielded only
//! after its header checksum, payload checksum and `txn::access` validation all pass; zxids
//! strictly increase within a segment; bytes after the last record are zero. An invalid
//! record followed by nothing valid is a torn tail (cut it off); followed by any valid
//! record it is corruption (stop).

use std::fmt;

use crate::txn::{self, ArchivedTxn};

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RKTXNLOG";
/// Format version written in segment and record headers (0 never appears: it marks "no record").
/// 2: txns may hold the null-data ops appended to `txn::TxnOp` (a version-1 binary refuses
/// such a log by its version instead of calling those records corrupt).
pub const FORMAT_VERSION: u16 = 2;
/// The oldest version still read: a version-1 payload is a valid archive of today's `txn::Txn`
/// (variants are only appended), so segments and records of either version mix freely.
pub const OLDEST_READABLE_VERSION: u16 = 1;

fn readable_version(version: u16) -> bool {
    (OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version)
}
/// Bytes of the segment header; the first record starts here.
pub const SEGMENT_HEADER_BYTES: usize = 48;
/// Bytes of a record header; the payload follows.
pub const RECORD_HEADER_BYTES: usize = 32;
/// Alignment of every record (and so of every payload) relative to the segment start.
pub const RECORD_ALIGN: usize = 16;
/// Largest payload a record may declare; anything larger is treated as a damaged header.
pub const RECORD_PAYLOAD_MAX_BYTES: usize = 1 << 30;
/// Segment files are named `log.` followed by the first zxid as 16 hex digits.
pub const SEGMENT_PREFIX: &str = "log.";

/// What a segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// zxid of the first record the segment was created for (also in the file name).
    pub first_zxid: i64,
    /// zxid of the last record of the previous segment (0 for the first segment): a missing
    /// segment shows as a mismatch, whatever the zxid epochs do.
    pub prev_zxid: i64,
}

/// Why a record (or a region where one should be) is not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFault {
    /// The record header does not fit in the remaining bytes.
    ShortHeader,
    /// Version field is neither 0 (end) nor a readable version.
    BadVersion(u16),
    /// Flags or reserved bytes that must be zero are not.
    NonZeroReserved,
    /// The header's own checksum does not match.
    HeaderChecksum,
    /// The declared payload runs past the end of the segment (or past the sanity limit).
    PayloadBeyondEnd(u32),
    /// The payload's crc32c does not match.
    PayloadChecksum,
    /// A zero (end-of-log) header, but non-zero bytes follow it.
    DataAfterEnd,
}

impl fmt::Display for RecordFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordFault::ShortHeader => write!(f, "record header cut short by the end of the file"),
            RecordFault::BadVersion(v) => write!(f, "unknown record format version {v}"),
            RecordFault::NonZeroReserved => {
                write!(f, "non-zero flags or reserved bytes in the record header")
            }
            RecordFault::HeaderChecksum => write!(f, "record header checksum mismatch"),
            RecordFault::PayloadBeyondEnd(len) => {
                write!(f, "payload length {len} runs past the end of the segment")
            }
            RecordFault::PayloadChecksum => write!(f, "payload checksum (crc32c) mismatch"),
            RecordFault::DataAfterEnd => write!(f, "non-zero bytes after the end-of-log marker"),
        }
    }
}

/// A segment that cannot be trusted. Every variant names the byte offset in the segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("offset 0: bad segment header: {0}")]
    BadSegmentHeader(&'static str),
    #[error("offset {offset}: corrupt record ({fault}); a valid record follows at offset {next_valid}")]
    Corrupt { offset: u64, fault: RecordFault, next_valid: u64 },
    #[error("offset {offset}: record zxid {zxid:#x} passes its checksum but is not a valid txn: {detail}")]
    InvalidPayload { offset: u64, zxid: i64, detail: String },
    #[error(
        "offset {offset}: record header zxid {header_zxid:#x} differs from its txn's zxid {txn_zxid:#x}"
    )]
    ZxidMismatch { offset: u64, header_zxid: i64, txn_zxid: i64 },
    #[error("offset {offset}: zxid {zxid:#x} does not follow the previous record's {prev:#x}")]
    ZxidOrder { offset: u64, zxid: i64, prev: i64 },
    #[error("offset 0: segment buffer is not {RECORD_ALIGN}-byte aligned (read it into an AlignedVec)")]
    MisalignedBuffer,
}

/// One validated record of a segment.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    /// Byte offset of the record header in the segment.
    pub offset: u64,
    pub zxid: i64,
    /// The rkyv txn bytes (16-byte aligned when the segment buffer is).
    pub payload: &'a [u8],
    /// The validated archived txn inside `payload`.
    pub txn: &'a ArchivedTxn,
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("offset", &self.offset)
            .field("zxid", &self.zxid)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl Record<'_> {
    /// An owned copy of the txn (for tools that print it).
    pub fn to_txn(&self) -> txn::Txn {
        rkyv::deserialize::<txn::Txn, rkyv::rancor::Error>(self.txn)
            .expect("a validated archive deserializes")
    }
}

/// How a segment ends after its last valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Only zeros (or the end of the file) after the last record, which ends at `offset`.
    Clean { offset: u64 },
    /// A partial or invalid record at `offset` with nothing valid after it: the remains of a
    /// write torn by a crash. Non-zero bytes run up to `garbage_end`; cut the log at `offset`.
    TornTail { offset: u64, fault: RecordFault, garbage_end: u64 },
}

impl SegmentEnd {
    /// Where the next record would be appended.
    pub fn append_offset(&self) -> u64 {
        match *self {
            SegmentEnd::Clean { offset } | SegmentEnd::TornTail { offset, .. } => offset,
        }
    }
}

/// `n` rounded up to a multiple of `align` (a power of two).
pub const fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// Bytes a record with a payload of `payload_len` bytes occupies, padding included.
pub const fn record_len(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + align_up(payload_len, RECORD_ALIGN)
}

/// The file name of the segment whose first record has `first_zxid`.
pub fn segment_file_name(first_zxid: i64) -> String {
    format!("{SEGMENT_PREFIX}{:016x}", first_zxid as u64)
}

/// The first zxid a segment file name encodes, `None` for any other name.
pub fn parse_segment_file_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix(SEGMENT_PREFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le_i64(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes a segment header (layout in `FORMAT.md`).
pub fn encode_segment_header(header: &SegmentHeader) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut b = [0u8; SEGMENT_HEADER_BYTES];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&header.first_zxid.to_le_bytes());
    b[24..32].copy_from_slice(&header.prev_zxid.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..32]);
    b[32..36].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(decode_segment_header(&b), Ok(*header), "segment header must read back as written");
    b
}

/// Decodes and checks a segment header.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, LogError> {
    if bytes.len() < SEGMENT_HEADER_BYTES {
        return Err(LogError::BadSegmentHeader("file shorter than a segment header"));
    }
    let b = &bytes[..SEGMENT_HEADER_BYTES];
    if b[0..8] != SEGMENT_MAGIC {
        return Err(LogError::BadSegmentHeader("wrong magic (not a ringkeeper log segment)"));
    }
    if le_u32(b, 32) != crc32c::crc32c(&b[0..32]) {
        return Err(LogError::BadSegmentHeader("header checksum mismatch"));
    }
    if !readable_version(le_u16(b, 8)) {
        return Err(LogError::BadSegmentHeader("unsupported segment format version"));
    }
    if b[10..16].iter().chain(&b[36..48]).any(|&x| x != 0) {
        return Err(LogError::BadSegmentHeader("non-zero reserved bytes"));
    }
    Ok(SegmentHeader { first_zxid: le_i64(b, 16), prev_zxid: le_i64(b, 24) })
}

/// Writes one record (header, payload, zero padding) at the start of `out`, which must hold
/// at least [`record_len`]`(payload.len())` bytes; returns the bytes written. `out` must sit at
/// a [`RECORD_ALIGN`]-aligned offset of the segment.
pub fn encode_record(out: &mut [u8], zxid: i64, payload: &[u8]) -> usize {
    let len = record_len(payload.len());
    assert!(
        payload.len() <= RECORD_PAYLOAD_MAX_BYTES,
        "txn of {} bytes exceeds the record limit",
        payload.len()
    );
    let out = &mut out[..len];
    out[0..2].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[2..4].fill(0);
    out[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    out[8..16].copy_from_slice(&zxid.to_le_bytes());
    out[16..20].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&out[0..20]);
    out[20..24].copy_from_slice(&header_crc.to_le_bytes());
    out[24..RECORD_HEADER_BYTES].fill(0);
    out[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + payload.len()].copy_from_slice(payload);
    out[RECORD_HEADER_BYTES + payload.len()..].fill(0);
    debug_assert!(
        matches!(frame_at(out, 0), Ok(Some((z, p))) if z == zxid && p.len() == payload.len()),
        "record must read back as written"
    );
    len
}

/// Appends one record to `buf` (whose length must be a multiple of [`RECORD_ALIGN`]).
pub fn append_record(buf: &mut Vec<u8>, zxid: i64, payload: &[u8]) {
    assert_eq!(buf.len() % RECORD_ALIGN, 0, "records start aligned");
    let start = buf.len();
    buf.resize(start + record_len(payload.len()), 0);
    encode_record(&mut buf[start..], zxid, payload);
}

/// Checks the framing (header and payload checksums) of the record at `offset`.
/// `Ok(None)`: an all-zero header (end of log). `Ok(Some((zxid, payload)))`: a well-framed record.
fn frame_at(bytes: &[u8], offset: usize) -> Result<Option<(i64, &[u8])>, RecordFault> {
    let rest = &bytes[offset..];
    if rest.len() < RECORD_HEADER_BYTES {
        return if rest.iter().all(|&b| b == 0) { Ok(None) } else { Err(RecordFault::ShortHeader) };
    }
    let h = &rest[..RECORD_HEADER_BYTES];
    if h.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let version = le_u16(h, 0);
    if !readable_version(version) {
        return Err(RecordFault::BadVersion(version));
    }
    if le_u32(h, 20) != crc32c::crc32c(&h[0..20]) {
        return Err(RecordFault::HeaderChecksum);
    }
    if le_u16(h, 2) != 0 || h[24..].iter().any(|&b| b != 0) {
        return Err(RecordFault::NonZeroReserved);
    }
    let len = le_u32(h, 4);
    if len as usize > RECORD_PAYLOAD_MAX_BYTES || record_len(len as usize) > rest.len() {
        return Err(RecordFault::PayloadBeyondEnd(len));
    }
    let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len as usize];
    if le_u32(h, 16) != crc32c::crc32c(payload) {
        return Err(RecordFault::PayloadChecksum);
    }
    Ok(Some((le_i64(h, 8), payload)))
}

/// Reads a segment's records in order, validating each, then says how the segment ends.
///
/// ```text
/// let mut scanner = SegmentScanner::new(&bytes)?;   // bytes: 16-aligned, whole file
/// for record in &mut scanner { let record = record?; /* apply record.txn */ }
/// let end = scanner.end().expect("iteration finished without error");
/// ```
pub struct SegmentScanner<'a> {
    bytes: &'a [u8],
    header: SegmentHeader,
    offset: usize,
    prev_zxid: Option<i64>,
    end: Option<SegmentEnd>,
    failed: bool,
}

impl<'a> SegmentScanner<'a> {
    /// Checks the segment header. `bytes` is the whole segment file and must start at a
    /// 16-byte aligned address.
    pub fn new(bytes: &'a [u8]) -> Result<Self, LogError> {
        if bytes.as_ptr().align_offset(RECORD_ALIGN) != 0 {
            return Err(LogError::MisalignedBuffer);
        }
        let header = decode_segment_header(bytes)?;
        Ok(SegmentScanner {
            bytes,
            header,
            offset: SEGMENT_HEADER_BYTES,
            prev_zxid: None,
            end: None,
            failed: false,
        })
    }

    pub fn header(&self) -> SegmentHeader {
        self.header
    }

    /// How the segment ends; `Some` once iteration returned `None` (never after an error).
    pub fn end(&self) -> Option<SegmentEnd> {
        self.end
    }

    /// Whether any well-framed record starts at an aligned offset in `from..`.
    fn next_framed_record(&self, from: usize) -> Option<usize> {
        (align_up(from, RECORD_ALIGN)..self.bytes.len().saturating_sub(RECORD_HEADER_BYTES - 1))
            .step_by(RECORD_ALIGN)
            .find(|&at| matches!(frame_at(self.bytes, at), Ok(Some(_))))
    }

    /// Classifies an invalid region at `offset`: a torn tail unless a valid record follows.
    fn classify(&self, offset: usize, fault: RecordFault) -> Result<SegmentEnd, LogError> {
        if let Some(next) = self.next_framed_record(offset + RECORD_ALIGN) {
            return Err(LogError::Corrupt { offset: offset as u64, fault, next_valid: next as u64 });
        }
        let garbage_end = self.bytes.iter().rposition(|&b| b != 0).map_or(offset, |i| i + 1).max(offset);
        Ok(SegmentEnd::TornTail { offset: offset as u64, fault, garbage_end: garbage_end as u64 })
    }

    fn step(&mut self) -> Result<Option<Record<'a>>, LogError> {
        let offset = self.offset;
        match frame_at(self.bytes, offset) {
            Ok(None) => {
                if self.bytes[offset..].iter().all(|&b| b == 0) {
                    self.end = Some(SegmentEnd::Clean { offset: offset as u64 });
                } else {
                    self.end = Some(self.classify(offset, RecordFault::DataAfterEnd)?);
                }
                Ok(None)
            }
            Err(fault) => {
                self.end = Some(self.classify(offset, fault)?);
                Ok(None)
            }
            Ok(Some((zxid, payload))) => {
                let at = offset as u64;
                if let Some(prev) = self.prev_zxid {
                    if zxid <= prev {
                        return Err(LogError::ZxidOrder { offset: at, zxid, prev });
                    }
                }
                let txn = txn::access(payload).map_err(|e| LogError::InvalidPayload {
                    offset: at,
                    zxid,
                    detail: e.to_string(),
                })?;
                let txn_zxid = txn.zxid.to_native();
                if txn_zxid != zxid {
                    return Err(LogError::ZxidMismatch { offset: at, header_zxid: zxid, txn_zxid });
                }
                self.prev_zxid = Some(zxid);
                self.offset = offset + record_len(payload.len());
                Ok(Some(Record { offset: at, zxid, payload, txn }))
            }
        }
    }
}

impl<'a> Iterator for SegmentScanner<'a> {
    type Item = Result<Record<'a>, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() || self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{encode, Txn, TxnBody, TxnOp};
    use rkyv::util::AlignedVec;

    fn txn(zxid: i64, data_len: usize) -> Txn {
        Txn {
            session_id: 7,
            cxid: 1,
            zxid,
            time_ms: 1000,
            body: TxnBody::Op(TxnOp::SetData {
                path: format!("/n{zxid}"),
                data: vec![b'x'; data_len],
                version: 1,
            }),
        }
    }

    /// A preallocated segment: header, records for `zxids`, zeros up to `size`.
    fn segment(zxids: &[i64], size: usize) -> (AlignedVec, Vec<u64>) {
        let mut buf = encode_segment_header(&SegmentHeader { first_zxid: zxids[0], prev_zxid: 0 }).to_vec();
        let mut offsets = Vec::new();
        for &z in zxids {
            offsets.push(buf.len() as u64);
            append_record(&mut buf, z, &encode(&txn(z, (z as usize * 13) % 40)));
        }
        assert!(buf.len() <= size);
        buf.resize(size, 0);
        let mut aligned = AlignedVec::new();
        aligned.extend_from_slice(&buf);
        (aligned, offsets)
    }

    fn scan(bytes: &[u8]) -> (Vec<i64>, Result<SegmentEnd, LogError>) {
        let mut scanner = SegmentScanner::new(bytes).expect("header");
        let mut zxids = Vec::new();
        for r in &mut scanner {
            match r {
                Ok(r) => zxids.push(r.zxid),
                Err(e) => return (zxids, Err(e)),
            }
        }
        (zxids, Ok(scanner.end().expect("end")))
    }

    /// Rewrites the version of the segment header (0) or of the record header at `at`.
    fn set_version(bytes: &mut [u8], at: usize, version: u16) {
        // Segment header: version at 8, crc32c of 0..32 at 32; record: at 0, of 0..20 at 20.
        let (version_at, crc_span) = if at == 0 { (8, 32) } else { (0, 20) };
        bytes[at + version_at..at + version_at + 2].copy_from_slice(&version.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[at..at + crc_span]);
        bytes[at + crc_span..at + crc_span + 4].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn version_1_segments_and_records_are_still_read_and_unknown_versions_are_not() {
        let (mut bytes, offsets) = segment(&[1, 2, 3], 4096);
        set_version(&mut bytes, 0, 1);
        set_version(&mut bytes, offsets[0] as usize, 1);
        let (zxids, end) = scan(&bytes);
        assert_eq!(zxids, vec![1, 2, 3]);
        assert!(matches!(end, Ok(SegmentEnd::Clean { .. })), "{end:?}");
        set_version(&mut bytes, offsets[2] as usize, FORMAT_VERSION + 1);
        assert_eq!(scan(&bytes).0, vec![1, 2], "a record of an unknown version is not read");
        set_version(&mut bytes, 0, FORMAT_VERSION + 1);
        assert!(SegmentScanner::new(&bytes).is_err(), "a segment of an unknown version is refused");
    }

    #[test]
    fn records_are_aligned_and_round_trip() {
        let (bytes, offsets) = segment(&[1, 2, 3], 4096);
        let scanner = SegmentScanner::new(&bytes).unwrap();
        assert_eq!(scanner.header(), SegmentHeader { first_zxid: 1, prev_zxid: 0 });
        let records: Vec<_> = scanner.map(Result::unwrap).collect();
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), offsets);
        for r in &records {
            assert_eq!(r.payload.as_ptr() as usize % RECORD_ALIGN, 0);
            assert_eq!(r.txn.zxid.to_native(), r.zxid);
        }
    }

    #[test]
    fn clean_end_after_zeros_and_at_end_of_file() {
        let (bytes, _) = segment(&[1, 2, 3], 4096);
        let (zxids, end) = scan(&bytes);
        assert_eq!(zxids, vec![1, 2, 3]);
        assert!(matches!(end, Ok(SegmentEnd::Clean { .. })));
        let end_offset = end.unwrap().append_offset();
        // The file cut exactly after the last record also ends cleanly.
        let (zxids, end) = scan(&bytes[..end_offset as usize]);
        assert_eq!((zxids.len(), end), (3, Ok(SegmentEnd::Clean { offset: end_offset })));
    }

    #[test]
    fn torn_last_record_is_a_torn_tail() {
        let (mut bytes, offsets) = segment(&[1, 2, 3], 4096);
        let last = offsets[2] as usize;
        // Zero the second half of the last record, as a write torn mid-way would leave it.
        for b in &mut bytes[last + RECORD_HEADER_BYTES + 8..last + 200] {
            *b = 0;
        }
        let (zxids, end) = scan(&bytes);
        assert_eq!(zxids, vec![1, 2]);
        match end.unwrap() {
            SegmentEnd::TornTail { offset, fault, garbage_end } => {
                assert_eq!((offset, fault), (last as u64, RecordFault::PayloadChecksum));
                assert!(garbage_end > offset);
            }
            other => panic!("expected a torn tail, got {other:?}"),
        }
    }

    #[test]
    fn file_cut_mid_record_is_a_torn_tail() {
        let (bytes, offsets) = segment(&[1, 2, 3], 4096);
        let cut = offsets[2] as usize + 20;
        let (zxids, end) = scan(&bytes[..cut]);
        assert_eq!(zxids, vec![1, 2]);
        assert!(
            matches!(end, Ok(SegmentEnd::TornTail { offset, fault: RecordFault::ShortHeader, .. }) if offset == offsets[2])
        );
    }

    #[test]
    fn flipped_byte_before_valid_records_is_corruption() {
        let (mut bytes, offsets) = segment(&[1, 2, 3, 4], 4096);
        bytes[offsets[1] as usize + RECORD_HEADER_BYTES + 3] ^= 0x40;
        let (zxids, end) = scan(&bytes);
        assert_eq!(zxids, vec![1]);
        assert_eq!(
            end,
            Err(LogError::Corrupt {
                offset: offsets[1],
                fault: RecordFault::PayloadChecksum,
                next_valid: offsets[2]
            })
        );
        let message = end.unwrap_err().to_string();
        assert!(message.contains(&format!("offset {}", offsets[1])), "{message}");
    }

    #[test]
    fn damaged_header_before_valid_records_is_corruption() {
        let (mut bytes, offsets) = segment(&[1, 2, 3], 4096);
        bytes[offsets[1] as usize + 9] ^= 1; // zxid byte: header checksum fails
        let (_, end) = scan(&bytes);
        assert!(
            matches!(end, Err(LogError::Corrupt { offset, fault: RecordFault::HeaderChecksum, .. }) if offset == offsets[1])
        );
    }

    #[test]
    fn garbage_after_the_end_marker() {
        let (mut bytes, _) = segment(&[1, 2], 4096);
        let (_, end) = scan(&bytes);
        let end_offset = end.unwrap().append_offset() as usize;
        // Stray bytes, nothing valid after them: torn tail at the old end.
        bytes[end_offset + 100] = 0xee;
        let (zxids, end) = scan(&bytes);
        assert_eq!(zxids, vec![1, 2]);
        assert!(
            matches!(end, Ok(SegmentEnd::TornTail { offset, fault: RecordFault::DataAfterEnd, garbage_end }) if offset as usize == end_offset && garbage_end as usize == end_offset + 101)
        );
        // A zeroed record with a valid one after it: corruption (a lost write in the middle).
        let (mut bytes, offsets) = segment(&[1, 2, 3], 4096);
        let second = offsets[1] as usize;
        for b in &mut bytes[second..offsets[2] as usize] {
            *b = 0;
        }
        let (_, end) = scan(&bytes);
        assert!(
            matches!(end, Err(LogError::Corrupt { offset, next_valid, .. }) if offset as usize == second && next_valid == offsets[2])
        );
    }

    #[test]
    fn valid_checksum_but_invalid_txn_is_rejected() {
        let mut buf = encode_segment_header(&SegmentHeader { first_zxid: 1, prev_zxid: 0 }).to_vec();
        append_record(&mut buf, 1, &[0xffu8; 48]);
        buf.resize(1024, 0);
        let mut bytes = AlignedVec::<16>::new();
        bytes.extend_from_slice(&buf);
        let (_, end) = scan(&bytes);
        assert!(matches!(end, Err(LogError::InvalidPayload { offset: 48, zxid: 1, .. })), "{end:?}");
    }

    #[test]
    fn zxids_must_increase_and_match_the_txn() {
        let mut buf = encode_segment_header(&SegmentHeader { first_zxid: 5, prev_zxid: 4 }).to_vec();
        append_record(&mut buf, 5, &encode(&txn(5, 1)));
        append_record(&mut buf, 5, &encode(&txn(5, 1)));
        let mut bytes = AlignedVec::<16>::new();
        bytes.extend_from_slice(&buf);
        assert!(matches!(scan(&bytes).1, Err(LogError::ZxidOrder { zxid: 5, prev: 5, .. })));
        let mut buf = encode_segment_header(&SegmentHeader { first_zxid: 5, prev_zxid: 4 }).to_vec();
        append_record(&mut buf, 6, &encode(&txn(5, 1)));
        let mut bytes = AlignedVec::<16>::new();
        bytes.extend_from_slice(&buf);
        assert!(matches!(scan(&bytes).1, Err(LogError::ZxidMismatch { header_zxid: 6, txn_zxid: 5, .. })));
    }

    #[test]
    fn segment_header_checks() {
        let header = SegmentHeader { first_zxid: 0x1_0000_0001, prev_zxid: 0xff };
        let mut b = encode_segment_header(&header);
        assert_eq!(decode_segment_header(&b), Ok(header));
        b[20] ^= 1;
        assert_eq!(decode_segment_header(&b), Err(LogError::BadSegmentHeader("header checksum mismatch")));
        assert!(decode_segment_header(&[0u8; 48]).is_err());
        assert!(decode_segment_header(&b[..10]).is_err());
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(0x1_0000_0001), "log.0000000100000001");
        assert_eq!(parse_segment_file_name("log.0000000100000001"), Some(0x1_0000_0001));
        assert_eq!(parse_segment_file_name("log.1"), None);
        assert_eq!(parse_segment_file_name("snapshot.0000000000000001"), None);
    }
}
