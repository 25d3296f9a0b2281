//! Apache's transaction log file (`FileTxnLog`): the header, then records of
//! `crc (Adler32, long) | length (int) | TxnHeader + txn record [+ TxnDigest] | 'B'` until a
//! zero length (the preallocated zeros) or the end of the file. Each record is turned into
//! ringkeeper's own [`Txn`] so that it is applied by the one apply path (`crate::txn::apply`).
//!
//! How a file ends, with the rules of ringkeeper's own log (`crate::log`): a record cut short
//! (the file ends inside it, or its end marker is not 'B') with no well-formed record after it
//! is a torn tail, the crash of a write never acknowledged; a record whose checksum fails, or
//! a torn record followed by a well-formed one, is corruption and refused with its offset.
//! A record whose checksum passes but whose content does not decode is corruption too.

use super::records::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn, CreateTxn,
    DeleteTxn, ErrorTxn, FileHeader, MultiTxn, SetAclTxn, SetDataTxn, SubTxn, TxnHeader,
};
use super::{adler32, FormatError, FILE_FORMAT_VERSION};
use crate::proto::{Acl, DecodeError, ErrorCode, Id, Jute, JuteReader, OpCode};
use crate::tree::{owner_kind, ttl_owner, OwnerKind, CONTAINER_EPHEMERAL_OWNER};
use crate::txn::{Txn, TxnAcl, TxnBody, TxnOp};

/// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG" as a big-endian int.
pub const LOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// Bytes of the file header (magic, version, dbid).
pub const LOG_HEADER_BYTES: usize = 16;
/// Bytes in front of a record's payload: the checksum (long) and the length (int).
const RECORD_PREFIX_BYTES: usize = 12;
/// The byte that ends every record (`'B'`, written as "EOR").
const END_OF_RECORD: u8 = b'B';
/// Largest payload accepted, as the `jute.maxbuffer` bound Apache reads records with (with
/// its slack for the header); longer lengths are damage, not data.
pub const RECORD_BYTES_MAX: usize = 0xfffff + 1024;

/// One logged txn: where its record starts in the file, and the txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub offset: u64,
    pub txn: Txn,
}

/// How the records of a file end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// Zeros (or the end of the file) after the last record, at this offset.
    Clean { offset: u64 },
    /// A record cut short at `offset`, with nothing well-formed after it.
    Torn { offset: u64, detail: String },
}

/// A whole log file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApacheLog {
    pub dbid: i64,
    pub records: Vec<LogRecord>,
    pub end: LogEnd,
}

/// What is at `offset`: a complete record (payload range, next offset), the zero end, or why
/// the bytes there are not a complete record (a partial one or damage).
enum Framed {
    Record { payload: std::ops::Range<usize>, stored_crc: i64, next: usize },
    End,
    Partial(String),
}

fn frame_at(bytes: &[u8], offset: usize) -> Framed {
    let rest = &bytes[offset..];
    if rest.len() < RECORD_PREFIX_BYTES {
        return if rest.iter().all(|&b| b == 0) {
            Framed::End
        } else {
            Framed::Partial("the file ends inside a record header".into())
        };
    }
    let stored_crc = i64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"));
    let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    if length == 0 || length == -1 {
        // Apache reads an empty (or null) entry as the end of the preallocated file.
        return Framed::End;
    }
    if length < 0 || length as usize > RECORD_BYTES_MAX {
        return Framed::Partial(format!("record length {length} is impossible"));
    }
    let end = RECORD_PREFIX_BYTES + length as usize;
    match rest.get(end) {
        None => Framed::Partial("the file ends inside a record".into()),
        Some(&END_OF_RECORD) => Framed::Record {
            payload: offset + RECORD_PREFIX_BYTES..offset + end,
            stored_crc,
            next: offset + end + 1,
        },
        Some(other) => Framed::Partial(format!("record end marker is {other:#04x}, not 'B'")),
    }
}

/// Whether a well-formed record (framing and checksum) starts anywhere after `offset`.
fn record_after(bytes: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..bytes.len().saturating_sub(RECORD_PREFIX_BYTES)).find(|&at| {
        matches!(frame_at(bytes, at), Framed::Record { payload, stored_crc, .. }
            if stored_crc == adler32(&bytes[payload.clone()]))
    })
}

/// Decodes and checks a whole log file image.
pub fn decode(bytes: &[u8]) -> Result<ApacheLog, FormatError> {
    let header = FileHeader::decode(&mut JuteReader::new(bytes))
        .map_err(|e| FormatError::decoding(0, "file header", e))?;
    if header.magic != LOG_MAGIC {
        return Err(FormatError::at(0, "bad magic: not an Apache ZooKeeper transaction log (ZKLG)"));
    }
    if header.version != FILE_FORMAT_VERSION {
        return Err(FormatError::at(4, format!("unknown log version {}", header.version)));
    }
    let mut records = Vec::new();
    let mut offset = LOG_HEADER_BYTES;
    let end = loop {
        match frame_at(bytes, offset) {
            Framed::End => {
                if let Some(at) = bytes[offset..].iter().position(|&b| b != 0) {
                    let at = offset + at;
                    if record_after(bytes, at.saturating_sub(1)).is_some() {
                        return Err(FormatError::at(
                            at,
                            "non-zero bytes after the end of the log, then more records",
                        ));
                    }
                }
                break LogEnd::Clean { offset: offset as u64 };
            }
            Framed::Partial(detail) => {
                if let Some(later) = record_after(bytes, offset) {
                    return Err(FormatError::at(
                        offset,
                        format!("{detail}, yet a record follows at offset {later}"),
                    ));
                }
                break LogEnd::Torn { offset: offset as u64, detail };
            }
            Framed::Record { payload, stored_crc, next } => {
                let computed = adler32(&bytes[payload.clone()]);
                if stored_crc != computed {
                    return Err(FormatError::at(
                        offset,
                        format!("record checksum (Adler32) mismatch: stored {stored_crc:#x}, computed {computed:#x}"),
                    ));
                }
                let txn = decode_entry(&bytes[payload.clone()], payload.start)?;
                if let Some(last) = records.last().map(|r: &LogRecord| r.txn.zxid) {
                    if txn.zxid <= last {
                        // Apache 3.8.0's learner can log a diff it already logged again (its
                        // sync dies on a COMMIT between NEWLEADER and UPTODATE, and the next
                        // sync starts from its last *applied* zxid); Apache's replay applies
                        // the repeats again, idempotently, logging "(highestZxid) > (next
                        // log)". A repeat of the same txn is skipped here; a different txn
                        // under an earlier zxid is damage.
                        let earlier = records.binary_search_by_key(&txn.zxid, |r: &LogRecord| r.txn.zxid);
                        if earlier.is_ok_and(|at| records[at].txn == txn) {
                            log::warn!("Apache log: zxid {:#x} at offset {offset} repeats an earlier record; skipped", txn.zxid);
                            offset = next;
                            continue;
                        }
                        return Err(FormatError::at(
                            offset,
                            format!("zxid {:#x} does not follow {last:#x}", txn.zxid),
                        ));
                    }
                }
                records.push(LogRecord { offset: offset as u64, txn });
                offset = next;
            }
        }
    };
    Ok(ApacheLog { dbid: header.dbid, records, end })
}

/// Why a record's payload is not a txn.
enum TxnError {
    Decode(&'static str, DecodeError),
    Unknown(String),
}

fn record<T: Jute>(what: &'static str, r: &mut JuteReader<'_>) -> Result<T, TxnError> {
    T::decode(r).map_err(|e| TxnError::Decode(what, e))
}

fn acl(list: &[Acl]) -> Vec<TxnAcl> {
    list.iter().map(TxnAcl::from).collect()
}

/// One txn entry (`Util.marshallTxnEntry`: `TxnHeader`, the txn record of its type, maybe a
/// `TxnDigest`), as a log record's payload holds it and as a leader's PROPOSAL and INFORM
/// packets carry it; `base` is where the entry starts, for the error's offset.
pub fn decode_entry(entry: &[u8], base: usize) -> Result<Txn, FormatError> {
    decode_txn(entry).map_err(|e| match e {
        TxnError::Decode(what, e) => FormatError::decoding(base, what, e),
        TxnError::Unknown(detail) => FormatError::at(base, detail),
    })
}

/// One record's payload: `TxnHeader`, the txn record of its type, maybe a `TxnDigest`.
fn decode_txn(payload: &[u8]) -> Result<Txn, TxnError> {
    let mut r = JuteReader::new(payload);
    let header: TxnHeader = record("txn header", &mut r)?;
    let body = match OpCode::from_i32(header.txn_type) {
        Some(OpCode::CreateSession) => {
            let t: CreateSessionTxn = record("createSession txn", &mut r)?;
            TxnBody::CreateSession { timeout_ms: t.time_out }
        }
        Some(OpCode::CloseSession) => {
            // Apache 3.8 logs the paths (closeSessionTxnEnabled, the default); older servers
            // logged none, and then the session's own ephemerals go (see `replay`).
            let paths = CloseSessionTxn::decode(&mut r).map(|t| t.paths_to_delete).unwrap_or_default();
            TxnBody::CloseSession { ephemerals: paths }
        }
        Some(OpCode::Multi) => {
            let multi: MultiTxn = record("multi txn", &mut r)?;
            let mut ops = multi
                .txns
                .iter()
                .map(|sub| decode_op(sub.txn_type, header.client_id, &mut JuteReader::new(&sub.data)))
                .collect::<Result<Vec<_>, _>>()?;
            failed_multi_applies_nothing(&mut ops);
            TxnBody::Multi(ops)
        }
        _ => TxnBody::Op(decode_op(header.txn_type, header.client_id, &mut r)?),
    };
    Ok(Txn { session_id: header.client_id, cxid: header.cxid, zxid: header.zxid, time_ms: header.time, body })
}

/// The txn entry Apache logs and sends for `txn` (`Util.marshallTxnEntry`: `TxnHeader`, the
/// txn record of its type; no `TxnDigest`, which Apache's learner treats as absent): what a
/// ringkeeper leader sends its Apache followers in PROPOSAL and INFORM. The inverse of
/// [`decode_entry`] up to the forms ringkeeper does not keep apart (create vs create2, both
/// `CreateTxn`: a lone create goes as create2, one inside a multi as create; a failed
/// multi's ops, all error txns, as `DataTree.processTxn` applies them).
pub fn encode_entry(txn: &Txn) -> Vec<u8> {
    let (txn_type, record) = match &txn.body {
        TxnBody::CreateSession { timeout_ms } => {
            (OpCode::CreateSession, CreateSessionTxn { time_out: *timeout_ms }.to_bytes())
        }
        TxnBody::CloseSession { ephemerals } => {
            (OpCode::CloseSession, CloseSessionTxn { paths_to_delete: ephemerals.clone() }.to_bytes())
        }
        // A create alone goes as create2: Apache's `DataTree.processTxn` fills the result's
        // Stat only for create2 (and container/TTL), and its learner builds a create2 reply
        // from that Stat (a create reply, built from the request's own type, needs none).
        TxnBody::Op(op @ (TxnOp::Create { .. } | TxnOp::CreateNullData { .. })) => match encode_op(op) {
            (OpCode::Create, record) => (OpCode::Create2, record),
            other => other,
        },
        TxnBody::Op(op) => encode_op(op),
        TxnBody::Multi(ops) => {
            let txns = ops
                .iter()
                .map(|op| {
                    let (txn_type, data) = encode_op(op);
                    SubTxn { txn_type: txn_type as i32, data }
                })
                .collect();
            (OpCode::Multi, MultiTxn { txns }.to_bytes())
        }
    };
    let header = TxnHeader {
        client_id: txn.session_id,
        cxid: txn.cxid,
        zxid: txn.zxid,
        time: txn.time_ms,
        txn_type: txn_type as i32,
    };
    let mut entry = header.to_bytes();
    entry.extend_from_slice(&record);
    entry
}

/// One tree operation's Apache opcode and txn record.
fn encode_op(op: &TxnOp) -> (OpCode, Vec<u8>) {
    let acls = |list: &[TxnAcl]| -> Vec<Acl> {
        list.iter()
            .map(|a| Acl { perms: a.perms, id: Id { scheme: a.scheme.clone(), id: a.id.clone() } })
            .collect()
    };
    let create = |path: &str, data: Option<Vec<u8>>, acl: &[TxnAcl], owner: i64, parent_cversion: i32| {
        let (path, acl) = (path.to_string(), acls(acl));
        match owner_kind(owner) {
            OwnerKind::Container => {
                (OpCode::CreateContainer, CreateContainerTxn { path, data, acl, parent_cversion }.to_bytes())
            }
            OwnerKind::Ttl(ttl) => {
                (OpCode::CreateTtl, CreateTtlTxn { path, data, acl, parent_cversion, ttl }.to_bytes())
            }
            kind => {
                let ephemeral = matches!(kind, OwnerKind::Ephemeral(_));
                (OpCode::Create, CreateTxn { path, data, acl, ephemeral, parent_cversion }.to_bytes())
            }
        }
    };
    match op {
        TxnOp::Create { path, data, acl, ephemeral_owner, parent_cversion } => {
            create(path, Some(data.clone()), acl, *ephemeral_owner, *parent_cversion)
        }
        TxnOp::CreateNullData { path, acl, ephemeral_owner, parent_cversion } => {
            create(path, None, acl, *ephemeral_owner, *parent_cversion)
        }
        TxnOp::Delete { path } => (OpCode::Delete, DeleteTxn { path: path.clone() }.to_bytes()),
        TxnOp::SetData { path, data, version } => (
            OpCode::SetData,
            SetDataTxn { path: path.clone(), data: Some(data.clone()), version: *version }.to_bytes(),
        ),
        TxnOp::SetNullData { path, version } => {
            (OpCode::SetData, SetDataTxn { path: path.clone(), data: None, version: *version }.to_bytes())
        }
        TxnOp::SetAcl { path, acl, version } => {
            (OpCode::SetAcl, SetAclTxn { path: path.clone(), acl: acls(acl), version: *version }.to_bytes())
        }
        TxnOp::Check { path, version } => {
            (OpCode::Check, CheckVersionTxn { path: path.clone(), version: *version }.to_bytes())
        }
        TxnOp::Error { code } => (OpCode::Error, ErrorTxn { err: *code }.to_bytes()),
    }
}

/// A failed multi as Apache logs it keeps the real txns of the ops before the one that failed
/// (`PrepRequestProcessor`), and `DataTree.processTxn` applies none of them: every op of a
/// multi holding an error becomes an error, Ok before the first error and
/// RuntimeInconsistency after it, as the leader's reply and ringkeeper's own failed multis
/// ([`crate::txn::multi_failure`]) have them.
fn failed_multi_applies_nothing(ops: &mut [TxnOp]) {
    let Some(first_error) = ops.iter().position(|op| matches!(op, TxnOp::Error { .. })) else { return };
    for (i, op) in ops.iter_mut().enumerate() {
        if !matches!(op, TxnOp::Error { .. }) {
            let code = if i < first_error { ErrorCode::Ok } else { ErrorCode::RuntimeInconsistency };
            *op = TxnOp::Error { code: code.code() };
        }
    }
}

/// One tree operation of type `txn_type` (alone or inside a multi).
fn decode_op(txn_type: i32, client_id: i64, r: &mut JuteReader<'_>) -> Result<TxnOp, TxnError> {
    use OpCode::*;
    Ok(match OpCode::from_i32(txn_type) {
        Some(Create | Create2) => {
            let t: CreateTxn = record("create txn", r)?;
            let owner = if t.ephemeral { client_id } else { 0 };
            TxnOp::create(t.path, t.data, acl(&t.acl), owner, t.parent_cversion)
        }
        Some(CreateContainer) => {
            let t: CreateContainerTxn = record("createContainer txn", r)?;
            TxnOp::create(t.path, t.data, acl(&t.acl), CONTAINER_EPHEMERAL_OWNER, t.parent_cversion)
        }
        Some(CreateTtl) => {
            let t: CreateTtlTxn = record("createTTL txn", r)?;
            TxnOp::create(t.path, t.data, acl(&t.acl), ttl_owner(t.ttl), t.parent_cversion)
        }
        Some(Delete | DeleteContainer) => TxnOp::Delete { path: record::<DeleteTxn>("delete txn", r)?.path },
        Some(SetData | Reconfig) => {
            let t: SetDataTxn = record("setData txn", r)?;
            TxnOp::set_data(t.path, t.data, t.version)
        }
        Some(SetAcl) => {
            let t: SetAclTxn = record("setACL txn", r)?;
            TxnOp::SetAcl { path: t.path, acl: acl(&t.acl), version: t.version }
        }
        Some(Check) => {
            let t: CheckVersionTxn = record("check txn", r)?;
            TxnOp::Check { path: t.path, version: t.version }
        }
        Some(Error) => TxnOp::Error { code: record::<ErrorTxn>("error txn", r)?.err },
        _ => return Err(TxnError::Unknown(format!("unknown txn type {txn_type}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::JuteWriter;

    fn header(txn_type: i32, zxid: i64) -> TxnHeader {
        TxnHeader { client_id: 0x42, cxid: 1, zxid, time: 1_000, txn_type }
    }

    /// One framed record: Adler32, length, entry, 'B'.
    fn framed(entry: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = JuteWriter::new(&mut out);
        w.write_i64(adler32(entry));
        w.write_buffer(entry);
        out.push(b'B');
        out
    }

    fn entry(header: &TxnHeader, body: &[u8]) -> Vec<u8> {
        let mut out = header.to_bytes();
        out.extend_from_slice(body);
        out
    }

    fn create_body(path: &str, ephemeral: bool) -> Vec<u8> {
        let acl = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
        CreateTxn { path: path.into(), data: Some(b"d".to_vec()), acl, ephemeral, parent_cversion: -1 }
            .to_bytes()
    }

    fn file(records: &[Vec<u8>], zeros: usize) -> Vec<u8> {
        let mut out = FileHeader { magic: LOG_MAGIC, version: 2, dbid: 0 }.to_bytes();
        for r in records {
            out.extend_from_slice(r);
        }
        out.resize(out.len() + zeros, 0);
        out
    }

    fn sample_records() -> Vec<Vec<u8>> {
        let multi = MultiTxn {
            txns: vec![
                SubTxn { txn_type: OpCode::Create as i32, data: create_body("/m", false) },
                SubTxn { txn_type: OpCode::Error as i32, data: ErrorTxn { err: -101 }.to_bytes() },
            ],
        };
        vec![
            framed(&entry(
                &header(OpCode::CreateSession as i32, 1),
                &CreateSessionTxn { time_out: 30_000 }.to_bytes(),
            )),
            framed(&entry(&header(OpCode::Create2 as i32, 2), &create_body("/e", true))),
            framed(&entry(&header(OpCode::Multi as i32, 3), &multi.to_bytes())),
            // A closeSession as servers before 3.6 logged it: no body.
            framed(&entry(&header(OpCode::CloseSession as i32, 4), &[])),
        ]
    }

    #[test]
    fn a_repeated_run_of_records_is_skipped_and_a_different_txn_under_an_old_zxid_refused() {
        let records = sample_records();
        // Apache 3.8.0's learner logged records 2 and 3 again after a failed sync.
        let repeated = file(&[records.clone(), records[1..3].to_vec()].concat(), 0);
        let log = decode(&repeated).unwrap();
        assert_eq!(log.records.iter().map(|r| r.txn.zxid).collect::<Vec<_>>(), [1, 2, 3, 4]);
        let different = framed(&entry(&header(OpCode::Create2 as i32, 2), &create_body("/other", false)));
        let damaged = file(&[records, vec![different]].concat(), 0);
        assert!(decode(&damaged).unwrap_err().detail.contains("does not follow"));
    }

    #[test]
    fn encoded_entries_decode_to_the_same_txns() {
        let acl = vec![TxnAcl { perms: 31, scheme: "world".into(), id: "anyone".into() }];
        let create =
            |path: &str, owner: i64| TxnOp::create(path.into(), Some(b"d".to_vec()), acl.clone(), owner, 3);
        let bodies = vec![
            TxnBody::CreateSession { timeout_ms: 4_000 },
            TxnBody::CloseSession { ephemerals: vec!["/e".into()] },
            TxnBody::Op(create("/p", 0)),
            TxnBody::Op(create("/e", 0x42)),
            TxnBody::Op(create("/c", CONTAINER_EPHEMERAL_OWNER)),
            TxnBody::Op(create("/t", ttl_owner(5_000))),
            TxnBody::Op(TxnOp::create("/n".into(), None, acl.clone(), 0, 1)),
            TxnBody::Op(TxnOp::Delete { path: "/p".into() }),
            TxnBody::Op(TxnOp::set_data("/p".into(), Some(b"x".to_vec()), 2)),
            TxnBody::Op(TxnOp::set_data("/p".into(), None, 3)),
            TxnBody::Op(TxnOp::SetAcl { path: "/p".into(), acl: acl.clone(), version: 1 }),
            TxnBody::Op(TxnOp::Error { code: -101 }),
            TxnBody::Multi(vec![create("/m", 0), TxnOp::Check { path: "/m".into(), version: 0 }]),
            TxnBody::Multi(vec![TxnOp::Error { code: 0 }, TxnOp::Error { code: -101 }]),
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let txn = Txn { session_id: 0x42, cxid: 7, zxid: 0x1_0000_0000 + i as i64, time_ms: 99, body };
            assert_eq!(decode_entry(&encode_entry(&txn), 0).unwrap(), txn);
        }
    }

    #[test]
    fn records_become_ringkeeper_txns_and_the_zeros_end_the_log() {
        let log = decode(&file(&sample_records(), 4096)).unwrap();
        let bodies: Vec<&TxnBody> = log.records.iter().map(|r| &r.txn.body).collect();
        assert!(matches!(bodies[0], TxnBody::CreateSession { timeout_ms: 30_000 }));
        assert!(
            matches!(bodies[1], TxnBody::Op(TxnOp::Create { ephemeral_owner: 0x42, .. })),
            "{:?}",
            bodies[1]
        );
        // A failed multi applies nothing: the create before the failed op becomes an Ok error
        // (as DataTree.processTxn turns it).
        assert_eq!(
            bodies[2],
            &TxnBody::Multi(vec![TxnOp::Error { code: 0 }, TxnOp::Error { code: -101 }]),
            "{:?}",
            bodies[2]
        );
        assert_eq!(bodies[3], &TxnBody::CloseSession { ephemerals: vec![] });
        assert_eq!(log.records[1].offset, LOG_HEADER_BYTES as u64 + sample_records()[0].len() as u64);
        assert!(matches!(log.end, LogEnd::Clean { .. }));
    }

    #[test]
    fn null_data_stays_null_and_empty_data_stays_empty() {
        // A CreateTxn and a SetDataTxn as Apache logs a client's null data: length -1.
        let world = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
        let null_create =
            CreateTxn { path: "/null".into(), data: None, acl: world, ephemeral: false, parent_cversion: -1 }
                .to_bytes();
        let null_set = SetDataTxn { path: "/e".into(), data: None, version: 1 }.to_bytes();
        assert_eq!(&null_set[6..10], &(-1i32).to_be_bytes(), "null data is jute length -1 after the path");
        let empty_set = SetDataTxn { path: "/e".into(), data: Some(vec![]), version: 2 }.to_bytes();
        let multi =
            MultiTxn { txns: vec![SubTxn { txn_type: OpCode::SetData as i32, data: null_set.clone() }] };
        let records = [
            framed(&entry(&header(OpCode::Create as i32, 1), &null_create)),
            framed(&entry(&header(OpCode::SetData as i32, 2), &null_set)),
            framed(&entry(&header(OpCode::SetData as i32, 3), &empty_set)),
            framed(&entry(&header(OpCode::Multi as i32, 4), &multi.to_bytes())),
        ];
        let log = decode(&file(&records, 0)).unwrap();
        let bodies: Vec<&TxnBody> = log.records.iter().map(|r| &r.txn.body).collect();
        assert!(
            matches!(bodies[0], TxnBody::Op(TxnOp::CreateNullData { path, .. }) if path == "/null"),
            "{:?}",
            bodies[0]
        );
        assert_eq!(bodies[1], &TxnBody::Op(TxnOp::SetNullData { path: "/e".into(), version: 1 }));
        assert_eq!(bodies[2], &TxnBody::Op(TxnOp::SetData { path: "/e".into(), data: vec![], version: 2 }));
        assert_eq!(bodies[3], &TxnBody::Multi(vec![TxnOp::SetNullData { path: "/e".into(), version: 1 }]));
    }

    #[test]
    fn a_cut_last_record_is_a_torn_tail_but_damage_before_a_good_record_is_refused() {
        let records = sample_records();
        let whole = file(&records, 0);
        let torn = decode(&whole[..whole.len() - 3]).unwrap();
        assert_eq!(torn.records.len(), 3);
        let third = LOG_HEADER_BYTES + records[..3].iter().map(Vec::len).sum::<usize>();
        assert!(matches!(torn.end, LogEnd::Torn { offset, .. } if offset == third as u64), "{:?}", torn.end);

        // A flipped byte inside the second record: its checksum names it.
        let second = LOG_HEADER_BYTES + records[0].len();
        let mut flipped = whole.clone();
        flipped[second + 20] ^= 0x01;
        let error = decode(&flipped).unwrap_err();
        assert_eq!(error.offset, second as u64);
        assert!(error.detail.contains("Adler32"), "{error}");

        // A damaged end marker followed by good records: not a torn tail.
        let mut marker = whole.clone();
        marker[second - 1] = b'X';
        let error = decode(&marker).unwrap_err();
        assert_eq!(error.offset, LOG_HEADER_BYTES as u64);
        assert!(error.detail.contains("yet a record follows"), "{error}");
    }
}
