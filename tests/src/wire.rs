//! Client frames of the ZooKeeper wire protocol, shared by the tests' blocking raw client
//! (`tests/tests/common`) and the bench's async load generator (`ringkeeper_bench::wire`):
//! a frame is a 4-byte big-endian length and a jute payload; a request payload is a
//! `RequestHeader` then the body, a reply payload a `ReplyHeader` then the body. Pure byte
//! work on the engine's records (`ringkeeper_engine::proto`); sockets stay with the callers.

use ringkeeper_engine::proto::{self, DecodeError, Jute, JuteReader, JuteWriter, ReplyHeader, RequestHeader};

/// Appends one request frame whose body `encode_body` writes in place (no intermediate
/// buffer); the length is filled in afterwards. `op` is an opcode number (any, so tests can
/// send unknown ones).
pub fn push_request_with(
    out: &mut Vec<u8>,
    xid: i32,
    op: i32,
    encode_body: impl FnOnce(&mut JuteWriter<'_>),
) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut writer = JuteWriter::new(out);
    RequestHeader { xid, op }.encode(&mut writer);
    encode_body(&mut writer);
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

/// Appends one request frame: length, `RequestHeader`, then the encoded `body`.
pub fn push_request(out: &mut Vec<u8>, xid: i32, op: i32, body: &[u8]) {
    push_request_with(out, xid, op, |w| w.out.extend_from_slice(body));
}

/// Splits a reply payload (a frame without its length) into its header and body.
pub fn split_reply(payload: &[u8]) -> Result<(ReplyHeader, &[u8]), DecodeError> {
    let mut reader = JuteReader::new(payload);
    let header = ReplyHeader::decode(&mut reader)?;
    Ok((header, reader.rest()))
}

/// Whether a reply xid belongs to no request (ping reply or watch notification).
pub fn is_unsolicited(xid: i32) -> bool {
    xid == proto::xid::PING || xid == proto::xid::NOTIFICATION
}

/// The next client xid after `xid` (positive, wrapping past `i32::MAX` back to 1).
pub fn next_xid(xid: i32) -> i32 {
    if xid == i32::MAX {
        1
    } else {
        xid + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_is_length_header_body() {
        let mut out = Vec::new();
        push_request(&mut out, 7, 11, &[1, 2]);
        assert_eq!(out, [0, 0, 0, 10, 0, 0, 0, 7, 0, 0, 0, 11, 1, 2]);
        assert_eq!(next_xid(i32::MAX), 1);
    }

    #[test]
    fn a_reply_splits_into_header_and_body() {
        let mut payload = ReplyHeader { xid: 3, zxid: 9, err: -101 }.to_bytes();
        payload.extend_from_slice(&[5, 6]);
        let (header, body) = split_reply(&payload).unwrap();
        assert_eq!((header.xid, header.zxid, header.err, body), (3, 9, -101, &[5u8, 6][..]));
        assert!(split_reply(&[0, 0]).is_err());
    }
}
