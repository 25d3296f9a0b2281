//! Reply building (Apache's `FinalRequestProcessor`): read requests answered from the tree
//! (registering watches atomically with the read), and write replies built from what
//! [`crate::txn::apply`] returned. Multi replies follow `MultiResponse`'s layout: a
//! `MultiHeader` and body per result, closed by `{-1, done, -1}`; the header error of a multi
//! is always Ok (the per-op results carry the failure).

use super::{framed, reply_frame, Jute2};
use crate::acl;
use crate::proto::*;
use crate::tree::{DataTree, Node};
use crate::txn::OpResult;
use crate::watch::{WatchManager, WatcherId};

/// Who is reading, for ACL checks and watch registration.
pub struct ReadContext<'a> {
    pub tree: &'a DataTree,
    pub ids: &'a [Id],
    /// `zookeeper.skipACL=yes`: no ACL is checked (every read passes, getACL is unmasked).
    pub skip_acl: bool,
    pub session_id: i64,
    pub watcher: WatcherId,
}

/// Why a read is not answered with data: its body did not decode, or it gets an error reply.
enum ReadError {
    Decode(DecodeError),
    Reply(ErrorCode),
}

impl From<DecodeError> for ReadError {
    fn from(e: DecodeError) -> Self {
        ReadError::Decode(e)
    }
}

impl From<ErrorCode> for ReadError {
    fn from(code: ErrorCode) -> Self {
        ReadError::Reply(code)
    }
}

/// Whether the reader of `ctx` holds `perm` (any of the bits) in `acl`.
fn permits(ctx: &ReadContext<'_>, acl: &[Acl], perm: i32) -> bool {
    ctx.skip_acl || acl::check_perm(acl, perm, ctx.ids)
}

/// The node at `path` if the reader holds `perm` on it (any of the bits): NoNode or NoAuth
/// otherwise.
fn readable_node<'t>(ctx: &ReadContext<'t>, path: &str, perm: i32) -> Result<&'t Node, ErrorCode> {
    let node = ctx.tree.get(path).ok_or(ErrorCode::NoNode)?;
    if permits(ctx, ctx.tree.acl_of(node), perm) {
        Ok(node)
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// A node's data as getData answers it (null stays null).
/// A `GetDataResponse` encoded from the node's data where it lies: a reply built from a
/// copy allocated a large znode's data twice per read.
struct GetDataReply<'a> {
    data: Option<&'a [u8]>,
    stat: Stat,
}

impl<'a> GetDataReply<'a> {
    fn of(node: &'a Node) -> Self {
        GetDataReply { data: node.data.as_deref(), stat: node.stat() }
    }
}

impl Jute2 for GetDataReply<'_> {
    fn encode_into(&self, w: &mut JuteWriter<'_>) {
        w.write_nullable_buffer(self.data);
        self.stat.encode(w);
    }
}

fn child_names(node: &Node) -> Vec<String> {
    node.children.iter().map(|c| c.to_string()).collect()
}

/// Masks digest hashes for readers without ADMIN (`FinalRequestProcessor` getACL).
fn masked_acl(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let id = Id { scheme: a.id.scheme.clone(), id: format!("{}:x", acl::digest_user(&a.id.id)) };
                Acl { perms: a.perms, id }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// Answers one read request; `Err` only when its body does not decode.
pub fn read_reply(
    ctx: &ReadContext<'_>,
    xid: i32,
    zxid: i64,
    op: OpCode,
    body: &[u8],
    watches: &mut WatchManager,
) -> Result<Vec<u8>, DecodeError> {
    match answer_read(ctx, xid, zxid, op, &mut JuteReader::new(body), watches) {
        Ok(frame) => Ok(frame),
        Err(ReadError::Reply(code)) => Ok(reply_frame(xid, zxid, code, None)),
        Err(ReadError::Decode(e)) => Err(e),
    }
}

fn answer_read(
    ctx: &ReadContext<'_>,
    xid: i32,
    zxid: i64,
    op: OpCode,
    r: &mut JuteReader<'_>,
    watches: &mut WatchManager,
) -> Result<Vec<u8>, ReadError> {
    let tree = ctx.tree;
    let ok = |body: &dyn Jute2| reply_frame(xid, zxid, ErrorCode::Ok, Some(body));
    Ok(match op {
        OpCode::Exists => {
            let req = PathWatchRequest::decode(r)?;
            if req.path.contains('\0') {
                return Err(ErrorCode::BadArguments.into());
            }
            // An exists watch is left whether or not the node is there.
            if req.watch {
                watches.add_data_watch(&req.path, ctx.watcher);
            }
            let node = tree.get(&req.path).ok_or(ErrorCode::NoNode)?;
            ok(&StatResponse { stat: node.stat() })
        }
        OpCode::GetData => {
            let req = PathWatchRequest::decode(r)?;
            let node = readable_node(ctx, &req.path, perms::READ)?;
            if req.watch {
                watches.add_data_watch(&req.path, ctx.watcher);
            }
            ok(&GetDataReply::of(node))
        }
        OpCode::GetChildren | OpCode::GetChildren2 => {
            let req = PathWatchRequest::decode(r)?;
            let node = readable_node(ctx, &req.path, perms::READ)?;
            if req.watch {
                watches.add_child_watch(&req.path, ctx.watcher);
            }
            let children = child_names(node);
            if op == OpCode::GetChildren {
                ok(&GetChildrenResponse { children })
            } else {
                ok(&GetChildren2Response { children, stat: node.stat() })
            }
        }
        OpCode::GetAcl => {
            let req = PathRequest::decode(r)?;
            let node = readable_node(ctx, &req.path, perms::READ | perms::ADMIN)?;
            let acl = tree.acl_of(node);
            let acl = if permits(ctx, acl, perms::ADMIN) { acl.to_vec() } else { masked_acl(acl) };
            ok(&GetAclResponse { acl, stat: node.stat() })
        }
        OpCode::Sync => {
            let req = PathRequest::decode(r)?;
            ok(&req)
        }
        OpCode::CheckWatches | OpCode::RemoveWatches => {
            let req = WatchTypeRequest::decode(r)?;
            if !(watcher_type::CHILDREN..=watcher_type::ANY).contains(&req.watcher_type) {
                // 3.8's WatcherType has no persistent kinds: Apache fails to decode them.
                return Err(ErrorCode::MarshallingError.into());
            }
            let found = if op == OpCode::CheckWatches {
                watches.contains_watch(&req.path, req.watcher_type, ctx.watcher)
            } else {
                watches.remove_watches(&req.path, req.watcher_type, ctx.watcher)
            };
            if !found {
                return Err(ErrorCode::NoWatcher.into());
            }
            reply_frame(xid, zxid, ErrorCode::Ok, None)
        }
        OpCode::AddWatch => {
            let req = AddWatchRequest::decode(r)?;
            let recursive = match req.mode {
                add_watch_mode::PERSISTENT => false,
                add_watch_mode::PERSISTENT_RECURSIVE => true,
                _ => return Err(ErrorCode::BadArguments.into()),
            };
            watches.add_persistent_watch(&req.path, ctx.watcher, recursive);
            ok(&ErrorResponse { err: 0 })
        }
        OpCode::GetEphemerals => {
            let req = PathRequest::decode(r)?;
            let prefix = req.path.trim();
            let ephemerals = tree
                .ephemerals_of(ctx.session_id)
                .into_iter()
                .filter(|p| prefix.is_empty() || prefix == "/" || p.starts_with(prefix))
                .collect();
            ok(&GetEphemeralsResponse { ephemerals })
        }
        OpCode::GetAllChildrenNumber => {
            let req = PathRequest::decode(r)?;
            readable_node(ctx, &req.path, perms::READ)?;
            ok(&GetAllChildrenNumberResponse { total_number: tree.descendant_count(&req.path) as i32 })
        }
        OpCode::WhoAmI => {
            // Apache names a digest identity by its user only (`getUserName`).
            let client_info = ctx
                .ids
                .iter()
                .map(|id| {
                    let user = if id.scheme == "digest" { acl::digest_user(&id.id) } else { &id.id };
                    ClientInfo { auth_scheme: id.scheme.clone(), user: user.to_string() }
                })
                .collect();
            ok(&WhoAmIResponse { client_info })
        }
        _ => return Err(ErrorCode::Unimplemented.into()),
    })
}

/// One failed op in a multi reply.
fn error_result(w: &mut JuteWriter<'_>, code: i32) {
    MultiHeader { op: OpCode::Error as i32, done: false, err: code }.encode(w);
    ErrorResponse { err: code }.encode(w);
}

/// A multi reply: Ok header, one result per op written by `results`, then the done marker.
fn multi_frame(xid: i32, zxid: i64, results: impl FnOnce(&mut JuteWriter<'_>)) -> Vec<u8> {
    framed(|w| {
        ReplyHeader { xid, zxid, err: ErrorCode::Ok.code() }.encode(w);
        results(w);
        MultiHeader { op: -1, done: true, err: -1 }.encode(w);
    })
}

/// Answers a multiRead: each op succeeds or fails on its own.
pub fn multi_read_reply(ctx: &ReadContext<'_>, xid: i32, zxid: i64, ops: &[(OpCode, String)]) -> Vec<u8> {
    multi_frame(xid, zxid, |w| {
        for (op, path) in ops {
            match readable_node(ctx, path, perms::READ) {
                Err(code) => error_result(w, code.code()),
                Ok(node) => {
                    MultiHeader { op: *op as i32, done: false, err: 0 }.encode(w);
                    if *op == OpCode::GetData {
                        GetDataReply::of(node).encode_into(w);
                    } else {
                        GetChildrenResponse { children: child_names(node) }.encode(w);
                    }
                }
            }
        }
    })
}

/// The reply to a write, from the request's opcode and the apply results; `sub_ops` are the
/// opcodes of a multi's ops, in order.
pub fn write_reply(
    xid: i32,
    zxid: i64,
    op: OpCode,
    sub_ops: &[OpCode],
    results: &[OpResult],
    is_multi: bool,
) -> Vec<u8> {
    if is_multi {
        return multi_frame(xid, zxid, |w| {
            for (result, sub_op) in results.iter().zip(sub_ops) {
                multi_result(w, *sub_op, result)
            }
        });
    }
    let ok = |body: &dyn Jute2| reply_frame(xid, zxid, ErrorCode::Ok, Some(body));
    match results.first() {
        None => reply_frame(xid, zxid, ErrorCode::SystemError, None),
        Some(OpResult::Error { code }) => {
            reply_frame(xid, zxid, ErrorCode::from_i32(*code).unwrap_or(ErrorCode::SystemError), None)
        }
        Some(OpResult::Created { path, .. }) if op == OpCode::Create => {
            ok(&CreateResponse { path: path.clone() })
        }
        Some(OpResult::Created { path, stat }) => {
            ok(&Create2Response { path: path.clone(), stat: stat.clone() })
        }
        Some(OpResult::DataSet { stat } | OpResult::AclSet { stat }) => {
            ok(&StatResponse { stat: stat.clone() })
        }
        Some(_) => reply_frame(xid, zxid, ErrorCode::Ok, None),
    }
}

/// One op's result inside a multi reply; `op` is the opcode that op was sent with.
fn multi_result(w: &mut JuteWriter<'_>, op: OpCode, result: &OpResult) {
    let header =
        |w: &mut JuteWriter<'_>, op: OpCode| MultiHeader { op: op as i32, done: false, err: 0 }.encode(w);
    match result {
        OpResult::Error { code } => error_result(w, *code),
        OpResult::Created { path, .. } if matches!(op, OpCode::Create | OpCode::Create2) => {
            header(w, OpCode::Create);
            CreateResponse { path: path.clone() }.encode(w);
        }
        OpResult::Created { path, stat } => {
            // Apache answers createContainer and createTTL inside a multi as create2 (path
            // and Stat); create2 there was already turned into create (ZOOKEEPER-4026).
            header(w, OpCode::Create2);
            Create2Response { path: path.clone(), stat: stat.clone() }.encode(w);
        }
        OpResult::Deleted => header(w, OpCode::Delete),
        OpResult::DataSet { stat } => {
            header(w, OpCode::SetData);
            StatResponse { stat: stat.clone() }.encode(w);
        }
        OpResult::Checked => header(w, OpCode::Check),
        OpResult::AclSet { .. } | OpResult::SessionCreated | OpResult::SessionClosed => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_data_reply_encodes_as_a_get_data_response_in_one_allocation() {
        let stat = Stat { czxid: 3, mzxid: 4, version: 2, data_length: 5, ..Default::default() };
        for data in [None, Some(Vec::new()), Some(vec![7u8; 1 << 20])] {
            let borrowed =
                framed(|w| GetDataReply { data: data.as_deref(), stat: stat.clone() }.encode_into(w));
            let owned = framed(|w| GetDataResponse { data: data.clone(), stat: stat.clone() }.encode(w));
            assert_eq!(borrowed, owned);
            // The frame is reserved once, not doubled past its length.
            assert!(
                borrowed.capacity() < borrowed.len() + 1024,
                "{} for {}",
                borrowed.capacity(),
                borrowed.len()
            );
        }
    }
}
