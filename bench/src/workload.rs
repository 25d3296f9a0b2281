//! What the sessions send: the op mix, the keys, and request bodies pre-encoded once per run.
//!
//! Shared read-only by every session of one run ([`Templates`]). A session picks each op
//! with its own seeded [`SplitMix64`], so a run is reproducible from `--seed`. Keys are the
//! znodes `<base>/k<i>` created before the load; creates go under `<base>/c`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use ringkeeper_engine::acl::open_acl_unsafe;
use ringkeeper_engine::proto::{CreateRequest, Jute, OpCode, PathWatchRequest, SetDataRequest};

use crate::wire::push_request_with;
use crate::BenchError;

/// The kind of znode a create workload makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
}

impl CreateKind {
    const NAMES: [(&'static str, CreateKind); 4] = [
        ("persistent", CreateKind::Persistent),
        ("ephemeral", CreateKind::Ephemeral),
        ("persistent-sequential", CreateKind::PersistentSequential),
        ("ephemeral-sequential", CreateKind::EphemeralSequential),
    ];

    /// The wire flag (`CreateMode`).
    pub fn flag(self) -> i32 {
        match self {
            CreateKind::Persistent => 0,
            CreateKind::Ephemeral => 1,
            CreateKind::PersistentSequential => 2,
            CreateKind::EphemeralSequential => 3,
        }
    }

    fn is_sequential(self) -> bool {
        matches!(self, CreateKind::PersistentSequential | CreateKind::EphemeralSequential)
    }
}

impl FromStr for CreateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::NAMES.iter().find(|(name, _)| *name == s).map(|(_, kind)| *kind).ok_or_else(|| {
            let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
            format!("unknown create kind {s:?} (one of {})", names.join(", "))
        })
    }
}

impl fmt::Display for CreateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::NAMES.iter().find(|(_, k)| k == self).map(|(n, _)| *n).unwrap_or("?");
        f.write_str(name)
    }
}

/// The write half of a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// setData of `size` bytes on a random key.
    SetData,
    /// create of `size` bytes under `<base>/c`.
    Create(CreateKind),
}

/// Which ops a session sends: getData with probability `read_percent`, else the write op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpMix {
    pub read_percent: u32,
    pub write: WriteOp,
}

impl OpMix {
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.read_percent > 100 {
            return Err(BenchError::Config(format!("read percent {} is over 100", self.read_percent)));
        }
        Ok(())
    }

    /// Short name: `setData`, `getData`, `create(ephemeral-sequential)`, `mixed(90% getData, setData)`.
    pub fn describe(&self) -> String {
        let write = match self.write {
            WriteOp::SetData => "setData".to_string(),
            WriteOp::Create(kind) => format!("create({kind})"),
        };
        match self.read_percent {
            0 => write,
            100 => "getData".to_string(),
            p => format!("mixed({p}% getData, {write})"),
        }
    }
}

/// Whether a request reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
}

/// Paths and request bodies of one run, encoded once with the engine's jute records.
///
/// Every body the load sends is its path followed by fields that are the same for every op
/// of the run; those are encoded once here (`*_after_path`), so an op costs two copies and
/// no encoding, and the value is held once rather than once per key.
pub struct Templates {
    pub base: String,
    pub key_paths: Vec<String>,
    pub create_dir: String,
    mix: OpMix,
    data: Vec<u8>,
    /// getData's body after the path: `watch = false`.
    get_after_path: Vec<u8>,
    /// The write op's body after the path: setData's data and version, or create's data,
    /// ACL and flags.
    write_after_path: Vec<u8>,
}

/// The encoding of `record` without its path, which must be its first field and empty.
fn after_path(record: impl Jute) -> Vec<u8> {
    let mut bytes = record.to_bytes();
    debug_assert_eq!(bytes[..4], [0; 4], "an empty path is a zero length");
    bytes.split_off(4)
}

impl Templates {
    /// Keys `<base>/k0..k<keys>`, values of `size_bytes` bytes.
    pub fn new(base: &str, keys: usize, size_bytes: usize, mix: OpMix) -> Templates {
        let data: Vec<u8> = (0..size_bytes).map(|i| b'a' + (i % 26) as u8).collect();
        let get_after_path = after_path(PathWatchRequest { path: String::new(), watch: false });
        let write_after_path = match mix.write {
            WriteOp::SetData => {
                after_path(SetDataRequest { path: String::new(), data: data.clone(), version: -1 })
            }
            WriteOp::Create(kind) => {
                after_path(Self::create_request(String::new(), data.clone(), kind.flag()))
            }
        };
        Templates {
            base: base.to_string(),
            key_paths: (0..keys).map(|i| format!("{base}/k{i}")).collect(),
            create_dir: format!("{base}/c"),
            mix,
            data,
            get_after_path,
            write_after_path,
        }
    }

    /// The value every key holds and every write sends.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The body of a create of `path` holding `data` with the `CreateMode` flag, open ACL.
    pub fn create_body(path: String, data: Vec<u8>, flags: i32) -> Vec<u8> {
        Self::create_request(path, data, flags).to_bytes()
    }

    fn create_request(path: String, data: Vec<u8>, flags: i32) -> CreateRequest {
        CreateRequest { path, data, acl: open_acl_unsafe(), flags }
    }

    /// Draws the next op of a session.
    pub fn pick(&self, rng: &mut SplitMix64) -> (OpKind, usize) {
        let kind =
            if rng.below(100) < u64::from(self.mix.read_percent) { OpKind::Read } else { OpKind::Write };
        (kind, rng.below(self.key_paths.len() as u64) as usize)
    }

    /// Appends the frame of one op. `session` and `serial` name a non-sequential create.
    pub fn push_op(
        &self,
        out: &mut Vec<u8>,
        xid: i32,
        kind: OpKind,
        key: usize,
        session: usize,
        serial: u64,
    ) {
        let key_path = self.key_paths[key].as_str();
        let (op, path, after_path) = match (kind, self.mix.write) {
            (OpKind::Read, _) => (OpCode::GetData, Cow::Borrowed(key_path), &self.get_after_path),
            (OpKind::Write, WriteOp::SetData) => {
                (OpCode::SetData, Cow::Borrowed(key_path), &self.write_after_path)
            }
            (OpKind::Write, WriteOp::Create(create)) => {
                let path = if create.is_sequential() {
                    format!("{}/s{session}-", self.create_dir)
                } else {
                    format!("{}/s{session}-{serial}", self.create_dir)
                };
                (OpCode::Create, Cow::Owned(path), &self.write_after_path)
            }
        };
        push_request_with(out, xid, op, |w| {
            w.write_string(&path);
            w.out.extend_from_slice(after_path);
        });
    }
}

/// A small seeded PRNG (SplitMix64): cheap, and reproducible across platforms.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0; the modulo bias is negligible for our bounds).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_kind_round_trips_through_its_name() {
        for (name, kind) in CreateKind::NAMES {
            assert_eq!(name.parse::<CreateKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), name);
        }
        assert!("sometimes".parse::<CreateKind>().is_err());
    }

    #[test]
    fn ops_encode_as_the_engine_records() {
        let frame = |op: OpCode, body: Vec<u8>| {
            let mut out = Vec::new();
            crate::wire::push_request(&mut out, 9, op, &body);
            out
        };
        let op_frame = |t: &Templates, kind, key, serial| {
            let mut out = Vec::new();
            t.push_op(&mut out, 9, kind, key, 3, serial);
            out
        };
        let set = Templates::new("/b", 3, 5, OpMix { read_percent: 50, write: WriteOp::SetData });
        let get_body = PathWatchRequest { path: "/b/k1".into(), watch: false }.to_bytes();
        assert_eq!(op_frame(&set, OpKind::Read, 1, 0), frame(OpCode::GetData, get_body));
        let set_body = SetDataRequest { path: "/b/k2".into(), data: set.data().to_vec(), version: -1 };
        assert_eq!(op_frame(&set, OpKind::Write, 2, 0), frame(OpCode::SetData, set_body.to_bytes()));
        for (kind, name) in
            [(CreateKind::Persistent, "/b/c/s3-7"), (CreateKind::EphemeralSequential, "/b/c/s3-")]
        {
            let t = Templates::new("/b", 3, 5, OpMix { read_percent: 0, write: WriteOp::Create(kind) });
            let body = Templates::create_body(name.into(), t.data().to_vec(), kind.flag());
            assert_eq!(op_frame(&t, OpKind::Write, 0, 7), frame(OpCode::Create, body));
        }
    }

    #[test]
    fn mix_respects_read_percent_bounds() {
        let t = Templates::new("/b", 3, 4, OpMix { read_percent: 0, write: WriteOp::SetData });
        let mut rng = SplitMix64::new(1);
        assert!((0..100).all(|_| t.pick(&mut rng).0 == OpKind::Write));
        let t = Templates::new("/b", 3, 4, OpMix { read_percent: 100, write: WriteOp::SetData });
        assert!((0..100).all(|_| t.pick(&mut rng).0 == OpKind::Read));
    }
}
