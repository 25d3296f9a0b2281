//! The jute records of Apache ZooKeeper's on-disk files (`zookeeper.jute`: the
//! `org.apache.zookeeper.server.persistence` and `org.apache.zookeeper.txn` modules, and
//! `StatPersisted`), one doc line each. Field order is file order; everything is big-endian.
//! The `data` buffers read a null (length -1) as empty; the txn log reader tells the two apart
//! (`txnlog::data_is_null`), as the snapshot reader does for node data.

use crate::jute_record;
use crate::proto::Acl;

jute_record!(
    /// `FileHeader`: the first 16 bytes of a snapshot or log file (magic, version 2, dbid).
    FileHeader { magic: i32, version: i32, dbid: i64 }
);

jute_record!(
    /// `StatPersisted`: the stored part of a znode's Stat (cversion counts child creations).
    StatPersisted {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        pzxid: i64,
    }
);

jute_record!(
    /// `TxnHeader`: session, cxid, zxid, time and opcode in front of every logged txn.
    TxnHeader { client_id: i64, cxid: i32, zxid: i64, time: i64, txn_type: i32 }
);

jute_record!(
    /// `CreateTxn` (create, create2): `ephemeral` means owned by the header's session.
    CreateTxn { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, ephemeral: bool, parent_cversion: i32 }
);

jute_record!(
    /// `CreateTTLTxn` (createTTL).
    CreateTtlTxn { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, parent_cversion: i32, ttl: i64 }
);

jute_record!(
    /// `CreateContainerTxn` (createContainer).
    CreateContainerTxn { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, parent_cversion: i32 }
);

jute_record!(
    /// `DeleteTxn` (delete, deleteContainer).
    DeleteTxn { path: String }
);

jute_record!(
    /// `SetDataTxn` (setData, reconfig): `version` is the node's version after the write.
    SetDataTxn { path: String, data: Option<Vec<u8>>, version: i32 }
);

jute_record!(
    /// `CheckVersionTxn` (check inside a multi).
    CheckVersionTxn { path: String, version: i32 }
);

jute_record!(
    /// `SetACLTxn` (setACL): `version` is the aversion after the write.
    SetAclTxn { path: String, acl: Vec<Acl>, version: i32 }
);

jute_record!(
    /// `CreateSessionTxn` (createSession).
    CreateSessionTxn { time_out: i32 }
);

jute_record!(
    /// `CloseSessionTxn` (closeSession): the ephemerals deleted with the session.
    CloseSessionTxn { paths_to_delete: Vec<String> }
);

jute_record!(
    /// `ErrorTxn` (error): the error code a failed write answered.
    ErrorTxn { err: i32 }
);

jute_record!(
    /// `Txn`: one step of a multi, its opcode and its jute-encoded txn record.
    SubTxn { txn_type: i32, data: Vec<u8> }
);

jute_record!(
    /// `MultiTxn` (multi).
    MultiTxn { txns: Vec<SubTxn> }
);

jute_record!(
    /// `TxnDigest`: the tree digest Apache 3.6+ appends to a logged txn (read, not checked).
    TxnDigest { version: i32, tree_digest: i64 }
);
