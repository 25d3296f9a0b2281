//! AdminServer: Apache ZooKeeper 3.8's HTTP command interface (`admin.enableServer`, on by
//! default as in Apache; `admin.serverAddress`, `admin.serverPort` 8080). `GET /commands` lists
//! the commands as links; `GET /commands/<name>` runs one and answers JSON with Apache's keys
//! plus `"command"` and `"error"`. A command may be named as Apache names it (`monitor`,
//! `server_stats`, ...) or by its four-letter word (`mntr`, `srvr`, ...), as Apache allows.
//! An unknown command answers `"error": "Unknown command: <name>"`. Like Apache 3.8, these
//! commands need no authentication and ignore `4lw.commands.whitelist`.
//!
//! A plain thread of its own serves HTTP ([`tiny_http`]). It never touches the data role's
//! core: it leaves its question (the four-letter word whose numbers it needs) in
//! [`AdminQueries`] and the data role answers it with a [`ServerStatus`] at its next tick
//! (at most 50 ms later); the JSON is built here from that status.
//!
//! `voting_view` (Apache has no `reconfig` admin command; this is the one an operator
//! reads after a reconfig) shows the voting members of the configuration the server holds
//! now, from `/zookeeper/config`, with Apache's keys (`current_config`, per id
//! `server_addresses`, `election_addresses`, `client_address`, `learner_type`).
//!
//! Differences from Apache: the commands ringkeeper has no data for (`dump`, `hash`,
//! `last_snapshot`, `leader`, `observers`, `zabstate`, trace masks, system properties)
//! answer "Unknown command"; JSON is laid out by serde_json, not Jackson.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use ringkeeper_engine::zab::membership::host_text;
use ringkeeper_engine::zab::Membership;

use crate::config::HttpEndpoint;
use crate::four_letter::{monitor_values, ConnectionStatus, ServerStatus, NOT_SERVING, RINGKEEPER_VERSION};
use crate::http::response;
use crate::status::{AdminQueries, AdminQuery};

/// Apache's command names and the four-letter word whose numbers each one shows.
const COMMANDS: &[(&str, &str)] = &[
    ("configuration", "conf"),
    ("connection_stat_reset", "crst"),
    ("connections", "cons"),
    ("dirs", "dirs"),
    ("environment", "envi"),
    ("is_read_only", "isro"),
    ("monitor", "mntr"),
    ("ruok", "ruok"),
    ("server_stats", "srvr"),
    ("stat_reset", "srst"),
    ("stats", "stat"),
    ("watch_summary", "wchs"),
    ("watches", "wchc"),
    ("watches_by_path", "wchp"),
    ("voting_view", "conf"),
];

/// Apache's other names for a command: (alias, Apache's name).
const ALIASES: &[(&str, &str)] = &[("config", "configuration")];

/// The longest an HTTP request waits for the data role's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// Apache's name for a command given by name or by four-letter word, and that word.
fn command(name: &str) -> Option<(&'static str, &'static str)> {
    let name = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, full)| *full);
    // The first command a four-letter word shows is the one it names (`conf`: configuration).
    COMMANDS.iter().copied().find(|(full, word)| *full == name || *word == name)
}

/// Apache's `voting_view`: the voting members of the configuration `membership` (the text of
/// `/zookeeper/config`; none standalone), by id.
fn voting_view(membership: Option<&str>) -> Map<String, Value> {
    let members = membership.and_then(|text| Membership::parse(text).ok()).unwrap_or_default();
    let address = |host: &str, port: u16| format!("{}:{port}", host_text(host));
    let view: Map<String, Value> = members
        .members
        .values()
        .filter(|m| !m.observer)
        .map(|m| {
            let view = json!({
                "server_addresses": [address(&m.host, m.peer_port)],
                "election_addresses": [address(&m.host, m.election_port)],
                "client_address": m.client.as_ref().map_or(String::new(), |(host, port)| address(host, *port)),
                "learner_type": "participant",
            });
            (m.id.to_string(), view)
        })
        .collect();
    let mut out = Map::new();
    out.insert("current_config".into(), Value::Object(view));
    out
}

/// A number when the text is one (as Apache's JSON has them), else the text.
fn json_value(text: &str) -> Value {
    if let Ok(n) = text.parse::<i64>() {
        return n.into();
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => f.into(),
        _ => text.into(),
    }
}

/// `ServerCnxn.getConnectionInfo`: the brief form (`stats`) or the full one (`connections`).
fn connection(c: &ConnectionStatus, full: bool) -> Value {
    let mut info = json!({
        "remote_socket_address": c.remote.to_string(),
        "interest_ops": c.interest_ops,
        "outstanding_requests": c.outstanding,
        "packets_received": c.received,
        "packets_sent": c.sent,
    });
    if full && c.session_id != 0 {
        let more = json!({
            "session_id": c.session_id,
            "last_operation": c.last_op,
            "established": c.established_unix_ms,
            "session_timeout": c.session_timeout_ms,
            "last_cxid": c.last_cxid,
            "last_zxid": c.last_zxid,
            "last_response_time": c.last_response_ms,
            "last_latency": c.last_latency_ms,
            "min_latency": c.latency.min(),
            "avg_latency": c.latency.avg_int(),
            "max_latency": c.latency.max_ms,
        });
        if let (Value::Object(info), Value::Object(more)) = (&mut info, more) {
            info.extend(more);
        }
    }
    info
}

/// `server_stats` (Apache's `StatCommand` without connections).
fn server_stats(s: &ServerStatus) -> Map<String, Value> {
    let response_sizes = json!({
        "last_buffer_size": s.last_client_response_size,
        "min_buffer_size": s.min_client_response_size,
        "max_buffer_size": s.max_client_response_size,
    });
    let stats = json!({
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "fsync_threshold_exceed_count": 0,
        "client_response_stats": response_sizes,
        "data_dir_size": s.data_dir_size,
        "log_dir_size": s.log_dir_size,
        "provider_null": false,
        "server_state": s.mode.as_str(),
        "last_processed_zxid": s.last_zxid,
        "outstanding_requests": s.outstanding_requests,
        "avg_latency": (s.latency.avg_ms() * 10_000.0).round() / 10_000.0,
        "max_latency": s.latency.max_ms,
        "min_latency": s.latency.min(),
        "num_alive_client_connections": s.num_alive_connections,
        "uptime": s.uptime_ms,
        "auth_failed_count": s.auth_failed_count,
        "non_mtlsremote_conn_count": s.non_mtls_remote_conn_count,
        "non_mtlslocal_conn_count": s.non_mtls_local_conn_count,
    });
    let mut out = Map::new();
    out.insert("version".into(), s.version.clone().into());
    out.insert("read_only".into(), (s.mode == crate::four_letter::ServerMode::ReadOnly).into());
    out.insert("server_stats".into(), stats);
    out.insert("client_response".into(), response_sizes);
    out.insert("node_count".into(), s.node_count.into());
    out
}

/// The JSON fields of `name` (Apache's name) for the status `s`.
fn fields(name: &str, s: &ServerStatus) -> Map<String, Value> {
    let object = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    match name {
        "configuration" => object(json!({
            "client_port": s.conf.client_port,
            "data_dir": s.conf.data_dir.display().to_string(),
            "data_log_dir": s.conf.data_log_dir.display().to_string(),
            "tick_time": s.conf.tick_time_ms,
            "max_client_cnxns": s.conf.max_client_cnxns,
            "min_session_timeout": s.conf.min_session_timeout_ms,
            "max_session_timeout": s.conf.max_session_timeout_ms,
            "server_id": s.conf.server_id,
            "client_port_listen_backlog": s.conf.client_port_listen_backlog,
        })),
        "connections" => object(json!({
            "connections": s.connections.iter().map(|c| connection(c, true)).collect::<Vec<_>>(),
            "secure_connections": [],
        })),
        "dirs" => object(json!({ "datadir_size": s.data_dir_size, "logdir_size": s.log_dir_size })),
        "environment" => {
            let mut env = Map::new();
            env.insert("zookeeper.version".into(), s.version.clone().into());
            env.insert("ringkeeper.version".into(), RINGKEEPER_VERSION.into());
            env.extend(s.env.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))));
            env
        }
        "is_read_only" => object(json!({ "read_only": s.mode == crate::four_letter::ServerMode::ReadOnly })),
        "monitor" => monitor_values(s).into_iter().map(|(k, v)| (k, json_value(&v))).collect(),
        "server_stats" => server_stats(s),
        "stats" => {
            let mut out = server_stats(s);
            let brief: Vec<Value> = s.connections.iter().map(|c| connection(c, false)).collect();
            out.insert("connections".into(), brief.into());
            out.insert("secure_connections".into(), json!([]));
            out
        }
        "watch_summary" => object(json!({
            "num_connections": s.watching_connections,
            "num_paths": s.watched_paths,
            "num_total_watches": s.watch_total,
        })),
        "watches" => {
            let map: Map<String, Value> =
                s.watches_by_session.iter().map(|(id, paths)| (id.to_string(), json!(paths))).collect();
            object(json!({ "session_id_to_watched_paths": map }))
        }
        "watches_by_path" => {
            let map: Map<String, Value> =
                s.watches_by_path.iter().map(|(path, ids)| (path.clone(), json!(ids))).collect();
            object(json!({ "path_to_session_ids": map }))
        }
        "voting_view" => voting_view(s.conf.membership.as_deref()),
        // ruok, stat_reset, connection_stat_reset: nothing but the command and no error.
        _ => Map::new(),
    }
}

/// Runs `requested` (a name or four-letter word) and returns the JSON document.
fn run_command(requested: &str, queries: &AdminQueries) -> Value {
    let Some((name, word)) = command(requested) else {
        return json!({ "command": requested, "error": format!("Unknown command: {requested}") });
    };
    let (reply, answer) = mpsc::channel();
    let word: [u8; 4] = word.as_bytes().try_into().expect("four-letter words have four letters");
    queries.lock().expect("admin queries lock").push(AdminQuery { word, reply });
    let (mut out, error) = match answer.recv_timeout(ANSWER_WAIT) {
        Ok(status) if status.serving || name == "environment" => (fields(name, &status), Value::Null),
        Ok(_) => (Map::new(), NOT_SERVING.into()),
        Err(_) => (Map::new(), "the server did not answer in time".into()),
    };
    out.insert("command".into(), name.into());
    out.insert("error".into(), error);
    Value::Object(out)
}

/// `/commands`: a link per command, as Apache lists them.
fn command_links() -> String {
    COMMANDS.iter().map(|(name, _)| format!("<a href=\"/commands/{name}\">{name}</a>\n<br/>\n")).collect()
}

/// Binds the AdminServer and serves it from a thread of its own. Returns the bound address.
pub fn start(endpoint: &HttpEndpoint, queries: AdminQueries) -> anyhow::Result<SocketAddr> {
    crate::http::serve(endpoint, ("admin.serverAddress", "admin.serverPort"), "rk-admin", move |path| {
        match path.trim_end_matches('/').strip_prefix("/commands") {
            Some("") => response(200, "text/html; charset=utf-8", command_links()),
            Some(rest) if rest.starts_with('/') => {
                let document = run_command(&rest[1..], &queries);
                response(
                    200,
                    "application/json",
                    serde_json::to_string_pretty(&document).expect("JSON serializes"),
                )
            }
            _ => response(404, "text/plain", "Not found: the commands are at /commands\n".into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voting_view_lists_the_voters_of_the_configuration_with_apaches_keys() {
        let config = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                      server.2=[::1]:2889:3889:participant\n\
                      server.3=10.0.0.3:2890:3890:observer;2183\nversion=100000004";
        let view = Value::Object(voting_view(Some(config)));
        assert_eq!(
            view,
            json!({"current_config": {
                "1": {
                    "server_addresses": ["10.0.0.1:2888"],
                    "election_addresses": ["10.0.0.1:3888"],
                    "client_address": "0.0.0.0:2181",
                    "learner_type": "participant",
                },
                "2": {
                    "server_addresses": ["[::1]:2889"],
                    "election_addresses": ["[::1]:3889"],
                    "client_address": "",
                    "learner_type": "participant",
                },
            }})
        );
        assert_eq!(Value::Object(voting_view(None)), json!({"current_config": {}}));
    }

    #[test]
    fn config_names_the_configuration_command_and_conf_still_does() {
        assert_eq!(command("config"), Some(("configuration", "conf")));
        assert_eq!(command("conf"), Some(("configuration", "conf")));
        assert_eq!(command("voting_view"), Some(("voting_view", "conf")));
    }
}
