//! ACLs and authentication: digest ACLs with and without addAuth, `auth` (creator) ACLs,
//! world read-only nodes, ip ACLs for 127.0.0.1, refusals (NoAuth, InvalidACL, AuthFailed),
//! setACL permission and version checks, and whoAmI.

mod common;

use base64::Engine as _;
use common::*;
use ringkeeper_engine::proto::codes::{ErrorCode, OpCode};
use ringkeeper_engine::proto::records::{AuthPacket, PathRequest, WhoAmIResponse};
use ringkeeper_engine::proto::Jute;
use ringkeeper_tests::TestServer;
use sha1::Digest as _;
use zookeeper_client::{self as zk, Acl, Acls, AuthId, AuthUser, CreateMode, Permission};

/// The id a `digest` ACL names for `user:password`: `user:base64(sha1("user:password"))`.
fn digest_id(user: &str, password: &str) -> String {
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// A session authenticated as `user:password` with the digest scheme.
async fn connect_as(server: &TestServer, credentials: &str) -> zk::Client {
    connect_via(server, zk::Client::connector().with_auth("digest", credentials.as_bytes())).await
}

async fn read_err(client: &zk::Client, path: &str) -> Option<zk::Error> {
    within("get", client.get_data(path)).await.err()
}

async fn write_err(client: &zk::Client, path: &str) -> Option<zk::Error> {
    within("set", client.set_data(path, b"w", None)).await.err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl_admits_only_the_matching_identity() {
    let server = TestServer::start();
    let alice = connect_as(&server, "alice:secret").await;
    let acl = [Acl::new(Permission::ALL, AuthId::new("digest", &digest_id("alice", "secret")))];
    within("create", alice.create("/vault", b"gold", &CreateMode::Persistent.with_acls(Acls::new(&acl))))
        .await
        .unwrap();
    assert_eq!(read_err(&alice, "/vault").await, None);

    let anonymous = connect(&server).await;
    assert_eq!(read_err(&anonymous, "/vault").await, Some(zk::Error::NoAuth));
    assert_eq!(write_err(&anonymous, "/vault").await, Some(zk::Error::NoAuth));
    let child = create_err(&anonymous, "/vault/c", &open(CreateMode::Persistent)).await;
    assert_eq!(child, zk::Error::NoAuth);
    // Apache: exists needs no permission, getACL needs READ or ADMIN (since ZOOKEEPER-1392).
    assert!(stat_of(&anonymous, "/vault").await.is_some());
    let refused = within("getACL", anonymous.get_acl("/vault")).await;
    assert_eq!(refused.unwrap_err(), zk::Error::NoAuth);
    let (acls, _) = within("getACL", alice.get_acl("/vault")).await.unwrap();
    assert_eq!(acls, acl);

    within("addAuth", anonymous.auth("digest", b"bob:other")).await.unwrap();
    assert_eq!(read_err(&anonymous, "/vault").await, Some(zk::Error::NoAuth), "wrong identity");
    within("addAuth", anonymous.auth("digest", b"alice:secret")).await.unwrap();
    assert_eq!(read_err(&anonymous, "/vault").await, None, "addAuth takes effect at once");
    assert_eq!(write_err(&anonymous, "/vault").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creator_acl_expands_to_the_sessions_identities() {
    let server = TestServer::start();
    let anonymous = connect(&server).await;
    let creator_all = CreateMode::Persistent.with_acls(Acls::creator_all());
    assert_eq!(create_err(&anonymous, "/c", &creator_all).await, zk::Error::InvalidAcl);

    let carol = connect_as(&server, "carol:pw").await;
    within("create", carol.create("/c", b"", &creator_all)).await.unwrap();
    let (acls, stat) = within("getACL", carol.get_acl("/c")).await.unwrap();
    let expected = [Acl::new(Permission::ALL, AuthId::new("digest", &digest_id("carol", "pw")))];
    assert_eq!(acls, expected, "auth:: is stored as the creator's digest id");
    assert_eq!(stat.aversion, 0);
    assert_eq!(read_err(&anonymous, "/c").await, Some(zk::Error::NoAuth));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_read_only_node_refuses_every_write() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let read_only = CreateMode::Persistent.with_acls(Acls::anyone_read());
    within("create", client.create("/ro", b"r", &read_only)).await.unwrap();
    assert_eq!(read_err(&client, "/ro").await, None);
    assert_eq!(write_err(&client, "/ro").await, Some(zk::Error::NoAuth));
    assert_eq!(create_err(&client, "/ro/c", &open(CreateMode::Persistent)).await, zk::Error::NoAuth);
    let set_acl = within("setACL", client.set_acl("/ro", &Acls::anyone_all(), None)).await;
    assert_eq!(set_acl.unwrap_err(), zk::Error::NoAuth, "setACL needs ADMIN");
    // Deleting needs DELETE on the parent (the root is open), not on the node itself.
    delete(&client, "/ro").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_acl_matches_the_loopback_address() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let cases = [("/exact", "127.0.0.1", true), ("/net", "127.0.0.0/8", true), ("/other", "10.1.2.3", false)];
    for (path, ip, admitted) in cases {
        let acl = [Acl::new(Permission::ALL, AuthId::new("ip", ip))];
        within("create", client.create(path, b"", &CreateMode::Persistent.with_acls(Acls::new(&acl))))
            .await
            .unwrap();
        let expected = if admitted { None } else { Some(zk::Error::NoAuth) };
        assert_eq!(read_err(&client, path).await, expected, "ip:{ip}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_acls_are_invalid() {
    let server = TestServer::start();
    let client = connect(&server).await;
    mk(&client, "/n", b"").await;
    let invalid = [
        Acl::new(Permission::ALL, AuthId::new("digest", "no-colon")),
        Acl::new(Permission::ALL, AuthId::new("nosuchscheme", "x")),
        Acl::new(Permission::ALL, AuthId::new("ip", "300.1.1.1")),
        Acl::new(Permission::ALL, AuthId::new("world", "someone")),
    ];
    for acl in invalid {
        let acls = [acl];
        let options = CreateMode::Persistent.with_acls(Acls::new(&acls));
        assert_eq!(create_err(&client, "/bad", &options).await, zk::Error::InvalidAcl, "{acls:?}");
        let set = within("setACL", client.set_acl("/n", &Acls::new(&acls), None)).await;
        assert_eq!(set.unwrap_err(), zk::Error::InvalidAcl, "{acls:?}");
    }
    let set = within("setACL", client.set_acl("/n", &Acls::anyone_read(), Some(5))).await;
    assert_eq!(set.unwrap_err(), zk::Error::BadVersion);
    let stat = within("setACL", client.set_acl("/n", &Acls::anyone_read(), Some(0))).await.unwrap();
    assert_eq!(stat.aversion, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_am_i_lists_the_sessions_identities() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let users = within("whoAmI", client.list_auth_users()).await.unwrap();
    assert_eq!(users, [AuthUser::new("ip", "127.0.0.1")]);
    within("addAuth", client.auth("digest", b"dave:pw")).await.unwrap();
    let mut users = within("whoAmI", client.list_auth_users()).await.unwrap();
    users.sort_by(|a, b| a.scheme().cmp(b.scheme()));
    // Apache reports the digest user by name only, not the hashed id.
    assert_eq!(users, [AuthUser::new("digest", "dave"), AuthUser::new("ip", "127.0.0.1")]);
}

#[test]
fn unknown_auth_scheme_fails_and_closes_the_connection() {
    let server = TestServer::start();
    let mut raw = RawSession::connect(&server, 10_000);
    let who = raw.call(OpCode::WhoAmI, &PathRequest { path: String::new() });
    assert_eq!(who.header.err, 0);
    let auth = AuthPacket { auth_type: 0, scheme: "nosuchscheme".into(), auth: Some(b"x".to_vec()) };
    raw.send_with_xid(-4, OpCode::Auth as i32, &auth.to_bytes());
    let reply = raw.reply_to(-4).expect("an AuthFailed reply before the close");
    assert_eq!(reply.header.err, ErrorCode::AuthFailed.code());
    assert!(closes(&mut raw.stream));
}

#[test]
fn who_am_i_on_the_wire() {
    let server = TestServer::start();
    let mut raw = RawSession::connect(&server, 10_000);
    let xid = raw.send_raw_op(OpCode::WhoAmI as i32, &[]);
    let reply = raw.reply_to(xid).expect("whoAmI reply");
    let who = reply.decode::<WhoAmIResponse>();
    assert_eq!(who.client_info.len(), 1);
    assert_eq!(
        (who.client_info[0].auth_scheme.as_str(), who.client_info[0].user.as_str()),
        ("ip", "127.0.0.1")
    );
}
