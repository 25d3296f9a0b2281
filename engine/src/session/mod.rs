//! The session table: ids, passwords, negotiated timeouts, and expiry driven by time handed in.
//!
//! Owned by the data role. In: session creation/touch/close from applied requests, and `now`
//! from the caller's clock on every call. Out: the sessions whose deadline passed
//! ([`SessionTable::expired`]), which the caller closes with a CloseSession txn.
//! Invariant: `deadlines` holds exactly one entry per live, not-closing session, equal to its
//! `expires_at_ms`; deadlines are rounded up to the tick, as Apache's `ExpiryQueue`.
//!
//! Session passwords are a specified keyed hash, so that every server holding the same secret
//! computes the same password for a session id (a client resumes its session on any member):
//! the first [`PASSWORD_LEN`] bytes of HMAC-SHA256(key = the secret, message =
//! [`PASSWORD_CONTEXT`] followed by the session id as 8 bytes big-endian). An ensemble's
//! members derive the secret with [`ensemble_secret`] from what they all configure alike.

use std::collections::BTreeSet;

use crate::FastMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a session password, as Apache's.
pub const PASSWORD_LEN: usize = 16;

/// The bytes before the session id in the message a session password is the HMAC of.
pub const PASSWORD_CONTEXT: &[u8] = b"ringkeeper session password v1";

/// One client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: i32,
    pub passwd: [u8; PASSWORD_LEN],
    pub expires_at_ms: i64,
    /// A CloseSession txn for it has been issued; requests now get SessionExpired.
    pub closing: bool,
    /// The address of the client connection that last held it on this server (empty when
    /// none has here), for the log lines of its expiry and close.
    pub last_client: String,
}

/// All live sessions.
pub struct SessionTable {
    sessions: FastMap<i64, Session>,
    deadlines: BTreeSet<(i64, i64)>,
    next_id: i64,
    /// HMAC-SHA256 keyed with the password secret, cloned for each password.
    password_mac: Hmac<Sha256>,
    /// Passwords are Apache's ([`SessionTable::use_apache_passwords`]).
    apache_passwords: bool,
    tick_ms: i64,
}

/// The session-password secret of an ensemble, the same on every member however its
/// `server.N` lines are spelled: SHA-256 over [`ENSEMBLE_SECRET_CONTEXT`], the length of
/// `shared` (4 bytes big-endian) and `shared` (the bytes of `ringkeeper.session.secretFile`,
/// empty when not configured), then each member id in ascending order as 8 bytes big-endian.
/// Without a shared file the secret is known to whoever knows the member ids (as Apache's
/// password seed, a constant in its source); with one, only to the holders of that file.
pub fn ensemble_secret(member_ids: &[u64], shared: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut hash = Sha256::new();
    hash.update(ENSEMBLE_SECRET_CONTEXT);
    hash.update((shared.len() as u32).to_be_bytes());
    hash.update(shared);
    for id in ids {
        hash.update(id.to_be_bytes());
    }
    hash.finalize().to_vec()
}

/// The bytes an ensemble's session secret hash starts with ([`ensemble_secret`]).
pub const ENSEMBLE_SECRET_CONTEXT: &[u8] = b"ringkeeper ensemble session secret v1";

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTable")
            .field("sessions", &self.sessions.len())
            .field("next_id", &self.next_id)
            .field("tick_ms", &self.tick_ms)
            .finish_non_exhaustive()
    }
}

impl SessionTable {
    /// `now_ms` and `server_id` seed the id sequence as Apache's `initializeNextSessionId`;
    /// `secret` keys the passwords (handed in: what every server that may resume these
    /// sessions shares).
    pub fn new(server_id: i64, now_ms: i64, secret: &[u8], tick_ms: i64) -> Self {
        let base = ((now_ms as u64) << 24 >> 8) as i64 | (server_id << 56);
        SessionTable {
            sessions: FastMap::default(),
            deadlines: BTreeSet::new(),
            next_id: base,
            password_mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length"),
            apache_passwords: false,
            tick_ms: tick_ms.max(1),
        }
    }

    /// The next session id to hand out (used when a CreateSession txn is made).
    pub fn allocate_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// From now on every session has the password Apache ZooKeeper gives it
    /// ([`crate::apache::apache_session_password`]), the live ones included: a member of an
    /// Apache ensemble, whose clients move between it and Apache members.
    pub fn use_apache_passwords(&mut self) {
        self.apache_passwords = true;
        for session in self.sessions.values_mut() {
            session.passwd = crate::apache::apache_session_password(session.id);
        }
    }

    /// The password of a session id.
    pub fn password_for(&self, id: i64) -> [u8; PASSWORD_LEN] {
        if self.apache_passwords {
            return crate::apache::apache_session_password(id);
        }
        let mut mac = self.password_mac.clone();
        mac.update(PASSWORD_CONTEXT);
        mac.update(&id.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; PASSWORD_LEN];
        out.copy_from_slice(&digest[..PASSWORD_LEN]);
        out
    }

    fn deadline(&self, now_ms: i64, timeout_ms: i32) -> i64 {
        let t = now_ms + timeout_ms as i64;
        (t / self.tick_ms + 1) * self.tick_ms
    }

    /// Registers a session (applying CreateSession, or restoring one).
    pub fn add(&mut self, id: i64, timeout_ms: i32, now_ms: i64) {
        let expires_at_ms = self.deadline(now_ms, timeout_ms);
        if let Some(old) = self.sessions.insert(
            id,
            Session {
                id,
                timeout_ms,
                passwd: self.password_for(id),
                expires_at_ms,
                closing: false,
                last_client: String::new(),
            },
        ) {
            self.deadlines.remove(&(old.expires_at_ms, id));
        }
        self.deadlines.insert((expires_at_ms, id));
        if id >= self.next_id && (id >> 56) == (self.next_id >> 56) {
            self.next_id = id + 1;
        }
    }

    /// Gives a live session the password another server issued for it (a session Apache
    /// created, imported with its data), so that its client can reconnect; false when the
    /// session is not in the table.
    pub fn adopt_password(&mut self, id: i64, passwd: [u8; PASSWORD_LEN]) -> bool {
        self.sessions.get_mut(&id).map(|s| s.passwd = passwd).is_some()
    }

    /// Notes the client connection that now holds session `id`.
    pub fn set_last_client(&mut self, id: i64, client: &str) {
        if let Some(s) = self.sessions.get_mut(&id) {
            client.clone_into(&mut s.last_client);
        }
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Whether the session exists and is not being closed.
    pub fn is_live(&self, id: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Pushes the deadline out (any request or ping). False if the session is gone or closing.
    pub fn touch(&mut self, id: i64, now_ms: i64) -> bool {
        let tick = self.tick_ms;
        let Some(s) = self.sessions.get_mut(&id) else { return false };
        if s.closing {
            return false;
        }
        let new = ((now_ms + s.timeout_ms as i64) / tick + 1) * tick;
        if new > s.expires_at_ms {
            self.deadlines.remove(&(s.expires_at_ms, id));
            s.expires_at_ms = new;
            self.deadlines.insert((new, id));
        }
        true
    }

    /// Renews every live session's deadline from `now_ms` (a new leader takes over expiry and
    /// has not seen the touches its predecessor got, as Apache's fresh SessionTracker).
    pub fn touch_all(&mut self, now_ms: i64) {
        let ids: Vec<i64> = self.sessions.keys().copied().collect();
        for id in ids {
            self.touch(id, now_ms);
        }
    }

    /// Marks a session as closing (its CloseSession txn is on the way).
    pub fn mark_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if !s.closing {
                s.closing = true;
                self.deadlines.remove(&(s.expires_at_ms, id));
            }
        }
    }

    /// Removes a session (applying CloseSession).
    pub fn remove(&mut self, id: i64) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        self.deadlines.remove(&(s.expires_at_ms, id));
        Some(s)
    }

    /// Sessions whose deadline is at or before `now_ms`, oldest first, at most `max` of them
    /// (the rest stay due); each is marked closing.
    pub fn expired(&mut self, now_ms: i64, max: usize) -> Vec<i64> {
        let due: Vec<(i64, i64)> = self.deadlines.range(..=(now_ms, i64::MAX)).take(max).copied().collect();
        for &(_, id) in &due {
            self.mark_closing(id);
        }
        due.into_iter().map(|(_, id)| id).collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// All sessions, sorted by id (for `dump`, `cons` and snapshots).
    pub fn all(&self) -> Vec<&Session> {
        let mut v: Vec<&Session> = self.sessions.values().collect();
        v.sort_by_key(|s| s.id);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_touches_rounded_to_the_tick() {
        let mut t = SessionTable::new(0, 1_000_000, b"7", 2000);
        let id = t.allocate_id();
        t.add(id, 4000, 0);
        assert_eq!(t.get(id).unwrap().expires_at_ms, 6000);
        assert!(t.expired(5999, usize::MAX).is_empty());
        assert!(t.touch(id, 3000));
        assert!(t.expired(7999, usize::MAX).is_empty());
        assert_eq!(t.expired(8000, usize::MAX), vec![id]);
        assert!(!t.is_live(id));
        assert!(!t.touch(id, 8001));
        assert!(t.expired(100_000, usize::MAX).is_empty(), "a closing session expires once");
    }

    #[test]
    fn passwords_depend_on_id_and_secret() {
        let t = SessionTable::new(0, 0, b"1", 2000);
        let u = SessionTable::new(0, 0, b"2", 2000);
        assert_ne!(t.password_for(5), t.password_for(6));
        assert_ne!(t.password_for(5), u.password_for(5));
        assert_eq!(t.password_for(5), t.password_for(5));
    }

    #[test]
    fn ensemble_secret_depends_on_ids_and_shared_bytes_only() {
        let a = ensemble_secret(&[3, 1, 2], b"");
        assert_eq!(a, ensemble_secret(&[1, 2, 3, 3], b""), "order and repeats do not matter");
        assert_ne!(a, ensemble_secret(&[1, 2, 4], b""));
        assert_ne!(a, ensemble_secret(&[1, 2, 3], b"file"));
        // Python: hashlib.sha256(context + len + shared + ids).hexdigest()
        let hex: String = ensemble_secret(&[2, 1], b"k").iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(hex, "d97044381646f26df208581478ee5a8b2d8e9b67a5e2798f82c32dc8787fc581");
    }

    /// The passwords are the specified HMAC, not just any function of id and secret: these
    /// values come from Python's `hmac` module (`hmac.new(key, context + id.to_bytes(8, "big",
    /// signed=True), "sha256").digest()[:16]`), and a server started on another day, built by
    /// another toolchain, computes the same.
    #[test]
    fn passwords_are_hmac_sha256_of_the_id() {
        let t = SessionTable::new(3, 12345, b"ensemble secret", 2000);
        let hex = |b: [u8; PASSWORD_LEN]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(t.password_for(0x0123_4567_89ab_cdef)), "e48e0faced403e8751e4270ddbee3db1");
        assert_eq!(hex(t.password_for(-2)), "c0636e72ae9b446eb22ba26fb18d9652");
    }
}
