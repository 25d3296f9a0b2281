//! The records of `zookeeper.jute` that clients and servers exchange, one doc line each.
//! Field order is wire order.

use super::{DecodeError, Jute, JuteReader, JuteWriter};
use crate::jute_record;

jute_record!(
    /// `org.apache.zookeeper.data.Id`: an authentication scheme and an identity in it.
    Id { scheme: String, id: String }
);

jute_record!(
    /// `org.apache.zookeeper.data.ACL`: permission bits granted to an Id.
    Acl { perms: i32, id: Id }
);

jute_record!(
    /// `org.apache.zookeeper.data.Stat`: the metadata of a znode.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }
);

jute_record!(
    /// `ClientInfo` in a whoAmI reply: one authenticated identity of the session.
    ClientInfo { auth_scheme: String, user: String }
);

jute_record!(
    /// `RequestHeader`: xid and opcode in front of every client request.
    RequestHeader { xid: i32, op: i32 }
);

jute_record!(
    /// `ReplyHeader`: xid, the server's last zxid, and the error code of every reply.
    ReplyHeader { xid: i32, zxid: i64, err: i32 }
);

impl ReplyHeader {
    /// The header of a whole reply frame as a server writes it (length prefix, then the header).
    pub fn of_frame(frame: &[u8]) -> Option<ReplyHeader> {
        ReplyHeader::from_bytes(frame.get(4..)?).ok()
    }
}

jute_record!(
    /// `WatcherEvent`: a watch notification (sent with xid -1).
    WatcherEvent { event_type: i32, state: i32, path: String }
);

jute_record!(
    /// `AuthPacket`: addAuthInfo (sent with xid -4); `auth` may be null.
    AuthPacket { auth_type: i32, scheme: String, auth: Option<Vec<u8>> }
);

jute_record!(
    /// `SetWatches`: watches a client re-registers after reconnecting (xid -8).
    SetWatches {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
    }
);

jute_record!(
    /// `SetWatches2`: SetWatches plus persistent and persistent-recursive watches.
    SetWatches2 {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
        persistent_watches: Vec<String>,
        persistent_recursive_watches: Vec<String>,
    }
);

jute_record!(
    /// `CreateRequest` (create, create2, createContainer).
    /// `data` is `None` for a null buffer (length -1), which the node then keeps.
    CreateRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32 }
);

jute_record!(
    /// `CreateTTLRequest`: create with a time-to-live in milliseconds.
    CreateTtlRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl: i64 }
);

jute_record!(
    /// `CreateResponse`: the path actually created (with its sequence suffix).
    CreateResponse { path: String }
);

jute_record!(
    /// `Create2Response`: the path created and its Stat.
    Create2Response { path: String, stat: Stat }
);

jute_record!(
    /// `DeleteRequest`: path and expected version (-1 = any).
    DeleteRequest { path: String, version: i32 }
);

jute_record!(
    /// `GetDataRequest`, `ExistsRequest`, `GetChildrenRequest`, `GetChildren2Request`:
    /// a path and whether to leave a one-shot watch.
    PathWatchRequest { path: String, watch: bool }
);

jute_record!(
    /// `GetDataResponse`: the data (`None`: null, as the node was given) and Stat.
    GetDataResponse { data: Option<Vec<u8>>, stat: Stat }
);

jute_record!(
    /// `ReconfigRequest`: incremental (joining `server.N=...` and leaving ids, comma
    /// separated) or bulk (`newMembers`) membership change, from config `cur_config_id` (-1:
    /// any). Null lists are not given.
    ReconfigRequest {
        joining_servers: Option<String>,
        leaving_servers: Option<String>,
        new_members: Option<String>,
        cur_config_id: i64,
    }
);

jute_record!(
    /// `SetDataRequest`: new data and expected version (-1 = any).
    SetDataRequest { path: String, data: Option<Vec<u8>>, version: i32 }
);

jute_record!(
    /// `SetDataResponse`, `ExistsResponse`, `SetACLResponse`: a Stat.
    StatResponse { stat: Stat }
);

jute_record!(
    /// `GetACLRequest`, `SyncRequest`, `SyncResponse`, `GetAllChildrenNumberRequest`,
    /// `GetEphemeralsRequest`: a single path.
    PathRequest { path: String }
);

jute_record!(
    /// `GetACLResponse`: the ACL list and Stat.
    GetAclResponse { acl: Vec<Acl>, stat: Stat }
);

jute_record!(
    /// `SetACLRequest`: new ACL and expected aversion (-1 = any).
    SetAclRequest { path: String, acl: Vec<Acl>, version: i32 }
);

jute_record!(
    /// `GetChildrenResponse`: child names.
    GetChildrenResponse { children: Vec<String> }
);

jute_record!(
    /// `GetChildren2Response`: child names and the parent's Stat.
    GetChildren2Response { children: Vec<String>, stat: Stat }
);

jute_record!(
    /// `CheckVersionRequest`: multi's check op.
    CheckVersionRequest { path: String, version: i32 }
);

jute_record!(
    /// `CheckWatchesRequest` / `RemoveWatchesRequest`: path and `WatcherType`.
    WatchTypeRequest { path: String, watcher_type: i32 }
);

jute_record!(
    /// `GetSASLRequest` / `SetSASLResponse` (opcode 102): one SASL token each way; the server
    /// answers a null token when it has nothing to send.
    SaslToken { token: Option<Vec<u8>> }
);

jute_record!(
    /// `AddWatchRequest`: path and `AddWatchMode`.
    AddWatchRequest { path: String, mode: i32 }
);

jute_record!(
    /// `GetEphemeralsResponse`: paths of the session's ephemerals.
    GetEphemeralsResponse { ephemerals: Vec<String> }
);

jute_record!(
    /// `GetAllChildrenNumberResponse`: count of all descendants.
    GetAllChildrenNumberResponse { total_number: i32 }
);

jute_record!(
    /// `WhoAmIResponse`: the session's authenticated identities.
    WhoAmIResponse { client_info: Vec<ClientInfo> }
);

jute_record!(
    /// `MultiHeader`: precedes each op in a multi request and each result in its reply.
    MultiHeader { op: i32, done: bool, err: i32 }
);

jute_record!(
    /// `ErrorResponse`: a failed op's code inside a multi reply.
    ErrorResponse { err: i32 }
);

/// `ConnectRequest`; clients since 3.4 append a `readOnly` byte that older ones omit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` when the client did not send the byte.
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn decode(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.remaining() > 0 { Some(r.read_bool()?) } else { None },
        })
    }
    fn encode(&self, w: &mut JuteWriter<'_>) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

/// `ConnectResponse`; the `readOnly` byte is sent back only to clients that sent one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// The answer to a session that is not (or no longer) valid: session id 0, timeout 0, a
    /// zero password, as Apache sends before closing the connection.
    pub fn invalid_session(read_only: Option<bool>) -> ConnectResponse {
        ConnectResponse { protocol_version: 0, timeout_ms: 0, session_id: 0, passwd: vec![0; 16], read_only }
    }
}

impl Jute for ConnectResponse {
    fn decode(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.remaining() > 0 { Some(r.read_bool()?) } else { None },
        })
    }
    fn encode(&self, w: &mut JuteWriter<'_>) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_with_and_without_read_only_byte() {
        let mut req = ConnectRequest { timeout_ms: 30000, passwd: vec![0; 16], ..Default::default() };
        let bytes = req.to_bytes();
        assert_eq!(bytes.len(), 4 + 8 + 4 + 8 + 4 + 16);
        assert_eq!(ConnectRequest::from_bytes(&bytes).unwrap().read_only, None);
        req.read_only = Some(false);
        let bytes = req.to_bytes();
        assert_eq!(bytes.len(), 45);
        assert_eq!(ConnectRequest::from_bytes(&bytes).unwrap(), req);
    }
}
