//! Reply building (Apache's `FinalRequestProcessor`): read requests answered from the tree
//! (registering watches atomically with the read), and write replies built from what
//! [`crate::txn::apply`] returned. Multi replies follow `MultiResponse`'s layout: a
//! `MultiHeader` and body per result, closed by `{-1, done, -1}`; the header error of a multi
//! is always Ok (the per-op results carry the failure).

use super::{reply_frame, Jute2};
use crate::acl;
use crate::proto::*;
use crate::tree::DataTree;
use crate::txn::OpResult;
use crate::watch::{WatchManager, WatcherId};

/// Who is reading, for ACL checks and watch registration.
pub struct ReadContext<'a> {
    pub tree: &'a DataTree,
    pub ids: &'a [Id],
    pub session_id: i64,
    pub watcher: WatcherId,
}

/// A read's outcome: a frame, and whether it left a watch.
pub type ReadOutcome = (Vec<u8>, bool);

fn error_frame(xid: i32, zxid: i64, code: ErrorCode) -> ReadOutcome {
    (reply_frame(xid, zxid, code, None), false)
}

fn ok_frame(xid: i32, zxid: i64, body: &dyn Jute2) -> Vec<u8> {
    reply_frame(xid, zxid, ErrorCode::Ok, Some(body))
}

/// Masks digest hashes for readers without ADMIN (`FinalRequestProcessor` getACL).
fn masked_acl(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl { perms: a.perms, id: Id { scheme: a.id.scheme.clone(), id: format!("{user}:x") } }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// Answers one read request.
pub fn read_reply(
    ctx: &ReadContext<'_>,
    xid: i32,
    zxid: i64,
    op: OpCode,
    body: &[u8],
    watches: &mut WatchManager,
) -> Result<ReadOutcome, DecodeError> {
    let mut r = JuteReader::new(body);
    let tree = ctx.tree;
    let readable = |node: &crate::tree::Node, perm: i32| acl::check_perm(tree.acl_of(node), perm, ctx.ids);
    Ok(match op {
        OpCode::Exists => {
            let req = PathWatchRequest::decode(&mut r)?;
            if req.path.contains('\0') {
                return Ok(error_frame(xid, zxid, ErrorCode::BadArguments));
            }
            match tree.get(&req.path) {
                None => {
                    if req.watch {
                        watches.add_data_watch(&req.path, ctx.watcher);
                    }
                    error_frame(xid, zxid, ErrorCode::NoNode)
                }
                Some(node) => {
                    if req.watch {
                        watches.add_data_watch(&req.path, ctx.watcher);
                    }
                    (ok_frame(xid, zxid, &StatResponse { stat: node.stat() }), req.watch)
                }
            }
        }
        OpCode::GetData => {
            let req = PathWatchRequest::decode(&mut r)?;
            match tree.get(&req.path) {
                None => error_frame(xid, zxid, ErrorCode::NoNode),
                Some(node) if !readable(node, perms::READ) => error_frame(xid, zxid, ErrorCode::NoAuth),
                Some(node) => {
                    if req.watch {
                        watches.add_data_watch(&req.path, ctx.watcher);
                    }
                    (
                        ok_frame(xid, zxid, &GetDataResponse { data: node.data.to_vec(), stat: node.stat() }),
                        req.watch,
                    )
                }
            }
        }
        OpCode::GetChildren | OpCode::GetChildren2 => {
            let req = PathWatchRequest::decode(&mut r)?;
            match tree.get(&req.path) {
                None => error_frame(xid, zxid, ErrorCode::NoNode),
                Some(node) if !readable(node, perms::READ) => error_frame(xid, zxid, ErrorCode::NoAuth),
                Some(node) => {
                    if req.watch {
                        watches.add_child_watch(&req.path, ctx.watcher);
                    }
                    let children: Vec<String> = node.children.iter().map(|c| c.to_string()).collect();
                    let frame = if op == OpCode::GetChildren {
                        ok_frame(xid, zxid, &GetChildrenResponse { children })
                    } else {
                        ok_frame(xid, zxid, &GetChildren2Response { children, stat: node.stat() })
                    };
                    (frame, req.watch)
                }
            }
        }
        OpCode::GetAcl => {
            let req = PathRequest::decode(&mut r)?;
            match tree.get(&req.path) {
                None => error_frame(xid, zxid, ErrorCode::NoNode),
                Some(node) if !readable(node, perms::READ | perms::ADMIN) => {
                    error_frame(xid, zxid, ErrorCode::NoAuth)
                }
                Some(node) => {
                    let acl = tree.acl_of(node);
                    let acl = if readable(node, perms::ADMIN) { acl.to_vec() } else { masked_acl(acl) };
                    (ok_frame(xid, zxid, &GetAclResponse { acl, stat: node.stat() }), false)
                }
            }
        }
        OpCode::Sync => {
            let req = PathRequest::decode(&mut r)?;
            (ok_frame(xid, zxid, &PathRequest { path: req.path }), false)
        }
        OpCode::CheckWatches | OpCode::RemoveWatches => {
            let req = WatchTypeRequest::decode(&mut r)?;
            if !(watcher_type::CHILDREN..=watcher_type::ANY).contains(&req.watcher_type) {
                // 3.8's WatcherType has no persistent kinds: Apache fails to decode them.
                return Ok(error_frame(xid, zxid, ErrorCode::MarshallingError));
            }
            let found = if op == OpCode::CheckWatches {
                watches.contains_watch(&req.path, req.watcher_type, ctx.watcher)
            } else {
                watches.remove_watches(&req.path, req.watcher_type, ctx.watcher)
            };
            if found {
                (reply_frame(xid, zxid, ErrorCode::Ok, None), false)
            } else {
                error_frame(xid, zxid, ErrorCode::NoWatcher)
            }
        }
        OpCode::AddWatch => {
            let req = AddWatchRequest::decode(&mut r)?;
            let recursive = match req.mode {
                add_watch_mode::PERSISTENT => false,
                add_watch_mode::PERSISTENT_RECURSIVE => true,
                _ => return Ok(error_frame(xid, zxid, ErrorCode::BadArguments)),
            };
            watches.add_persistent_watch(&req.path, ctx.watcher, recursive);
            (ok_frame(xid, zxid, &ErrorResponse { err: 0 }), true)
        }
        OpCode::GetEphemerals => {
            let req = PathRequest::decode(&mut r)?;
            let prefix = req.path.trim();
            let ephemerals = tree
                .ephemerals_of(ctx.session_id)
                .into_iter()
                .filter(|p| prefix.is_empty() || prefix == "/" || p.starts_with(prefix))
                .collect();
            (ok_frame(xid, zxid, &GetEphemeralsResponse { ephemerals }), false)
        }
        OpCode::GetAllChildrenNumber => {
            let req = PathRequest::decode(&mut r)?;
            match tree.get(&req.path) {
                None => error_frame(xid, zxid, ErrorCode::NoNode),
                Some(node) if !readable(node, perms::READ) => error_frame(xid, zxid, ErrorCode::NoAuth),
                Some(_) => {
                    let total_number = tree.descendant_count(&req.path) as i32;
                    (ok_frame(xid, zxid, &GetAllChildrenNumberResponse { total_number }), false)
                }
            }
        }
        OpCode::WhoAmI => {
            // Apache names a digest identity by its user only (`getUserName`).
            let user = |id: &Id| {
                if id.scheme == "digest" {
                    id.id.split(':').next().unwrap_or("").to_string()
                } else {
                    id.id.clone()
                }
            };
            let client_info = ctx
                .ids
                .iter()
                .map(|id| ClientInfo { auth_scheme: id.scheme.clone(), user: user(id) })
                .collect();
            (ok_frame(xid, zxid, &WhoAmIResponse { client_info }), false)
        }
        _ => error_frame(xid, zxid, ErrorCode::Unimplemented),
    })
}

/// Answers a multiRead: each op succeeds or fails on its own.
pub fn multi_read_reply(
    tree: &DataTree,
    ids: &[Id],
    xid: i32,
    zxid: i64,
    ops: &[(OpCode, String)],
) -> Vec<u8> {
    let mut body = Vec::new();
    let mut w = JuteWriter::new(&mut body);
    for (op, path) in ops {
        match tree.get(path) {
            None => error_result(&mut w, ErrorCode::NoNode),
            Some(node) if !acl::check_perm(tree.acl_of(node), perms::READ, ids) => {
                error_result(&mut w, ErrorCode::NoAuth)
            }
            Some(node) => {
                MultiHeader { op: *op as i32, done: false, err: 0 }.encode(&mut w);
                if *op == OpCode::GetData {
                    GetDataResponse { data: node.data.to_vec(), stat: node.stat() }.encode(&mut w);
                } else {
                    let children: Vec<String> = node.children.iter().map(|c| c.to_string()).collect();
                    GetChildrenResponse { children }.encode(&mut w);
                }
            }
        }
    }
    MultiHeader { op: -1, done: true, err: -1 }.encode(&mut w);
    raw_body_frame(xid, zxid, ErrorCode::Ok, &body)
}

fn error_result(w: &mut JuteWriter<'_>, code: ErrorCode) {
    MultiHeader { op: OpCode::Error as i32, done: false, err: code.code() }.encode(w);
    ErrorResponse { err: code.code() }.encode(w);
}

fn raw_body_frame(xid: i32, zxid: i64, err: ErrorCode, body: &[u8]) -> Vec<u8> {
    let mut frame = reply_frame(xid, zxid, err, None);
    frame.extend_from_slice(body);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame
}

/// The reply to a write, from the request's ops and the apply results.
pub fn write_reply(xid: i32, zxid: i64, op: OpCode, results: &[OpResult], is_multi: bool) -> Vec<u8> {
    if !is_multi {
        let result =
            results.first().cloned().unwrap_or(OpResult::Error { code: ErrorCode::SystemError.code() });
        return match result {
            OpResult::Error { code } => {
                reply_frame(xid, zxid, ErrorCode::from_i32(code).unwrap_or(ErrorCode::SystemError), None)
            }
            OpResult::Created { path, stat } => {
                if op == OpCode::Create {
                    ok_frame(xid, zxid, &CreateResponse { path })
                } else {
                    ok_frame(xid, zxid, &Create2Response { path, stat })
                }
            }
            OpResult::DataSet { stat } | OpResult::AclSet { stat } => {
                ok_frame(xid, zxid, &StatResponse { stat })
            }
            _ => reply_frame(xid, zxid, ErrorCode::Ok, None),
        };
    }
    let mut body = Vec::new();
    let mut w = JuteWriter::new(&mut body);
    for result in results {
        match result {
            OpResult::Error { code } => {
                MultiHeader { op: OpCode::Error as i32, done: false, err: *code }.encode(&mut w);
                ErrorResponse { err: *code }.encode(&mut w);
            }
            OpResult::Created { path, .. } => {
                // Apache 3.8 answers every create inside a multi with a plain create result
                // (path only, ZOOKEEPER-4026), whatever create opcode was sent.
                MultiHeader { op: OpCode::Create as i32, done: false, err: 0 }.encode(&mut w);
                CreateResponse { path: path.clone() }.encode(&mut w);
            }
            OpResult::Deleted => {
                MultiHeader { op: OpCode::Delete as i32, done: false, err: 0 }.encode(&mut w)
            }
            OpResult::DataSet { stat } => {
                MultiHeader { op: OpCode::SetData as i32, done: false, err: 0 }.encode(&mut w);
                StatResponse { stat: stat.clone() }.encode(&mut w);
            }
            OpResult::Checked => MultiHeader { op: OpCode::Check as i32, done: false, err: 0 }.encode(&mut w),
            OpResult::AclSet { .. } | OpResult::SessionCreated | OpResult::SessionClosed => {}
        }
    }
    MultiHeader { op: -1, done: true, err: -1 }.encode(&mut w);
    raw_body_frame(xid, zxid, ErrorCode::Ok, &body)
}
