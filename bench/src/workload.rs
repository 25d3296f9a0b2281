//! What the sessions send: the op mix ([`OpMix`]: a percentage per [`Op`] — getData, exists,
//! getChildren, setData, create, multi — plus the create kind, ops per multi and the
//! probability that a read sets a watch), the keys, and request bodies pre-encoded once per run.
//!
//! Shared read-only by every session of one run ([`Templates`]). A session picks each op,
//! key and watch flag with its own seeded [`SplitMix64`], so a run is reproducible from
//! `--seed`. Keys are the znodes `<base>/k<i>` created before the load; creates go under
//! `<base>/c`; getChildren lists `<base>` (the keys and `c`).

use std::fmt;
use std::str::FromStr;

use ringkeeper_engine::acl::open_acl_unsafe;
use ringkeeper_engine::proto::{CreateRequest, Jute, MultiHeader, OpCode, PathWatchRequest, SetDataRequest};

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

/// The value named `name` in a (name, value) table; the error lists the names.
fn by_name<T: Copy>(table: &[(&'static str, T)], name: &str, what: &str) -> Result<T, String> {
    table.iter().find(|(n, _)| *n == name).map(|(_, value)| *value).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        format!("unknown {what} {name:?} (one of {})", names.join(", "))
    })
}

impl FromStr for CreateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        by_name(&Self::NAMES, s, "create kind")
    }
}

impl fmt::Display for CreateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::NAMES.iter().find(|(_, k)| k == self).map(|(n, _)| *n).unwrap_or("?");
        f.write_str(name)
    }
}

/// One kind of request the load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// getData of a key (may set a data watch).
    GetData,
    /// exists of a key (may set a data watch).
    Exists,
    /// getChildren of the keys' parent (lists `--keys` names; may set a child watch).
    GetChildren,
    /// setData of `size` bytes on a key.
    SetData,
    /// create of `size` bytes under `<base>/c`, of the mix's [`CreateKind`].
    Create,
    /// multi of `multi_ops` setData on keys.
    Multi,
}

impl Op {
    /// Every op with its name, in the order of [`OpMix::percents`].
    pub const ALL: [(&'static str, Op); 6] = [
        ("getData", Op::GetData),
        ("exists", Op::Exists),
        ("getChildren", Op::GetChildren),
        ("setData", Op::SetData),
        ("create", Op::Create),
        ("multi", Op::Multi),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL[self as usize].0
    }

    /// Whether the op only reads (and may set a watch).
    pub fn is_read(self) -> bool {
        matches!(self, Op::GetData | Op::Exists | Op::GetChildren)
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        by_name(&Self::ALL, s, "op")
    }
}

/// Upper bound of `multi_ops`.
pub const MULTI_OPS_MAX: usize = 1000;

/// What a session sends: each op with its percentage, plus the parameters of some ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpMix {
    /// Percent of each op, indexed as [`Op::ALL`]; the sum is 100.
    pub percents: [u32; 6],
    pub create_kind: CreateKind,
    /// setData ops in one multi.
    pub multi_ops: usize,
    /// Probability (0..=1) that a read sets a watch.
    pub watch_probability: f64,
}

impl OpMix {
    /// Only `op`.
    pub fn only(op: Op) -> OpMix {
        let mut percents = [0; 6];
        percents[op as usize] = 100;
        OpMix { percents, create_kind: CreateKind::EphemeralSequential, multi_ops: 4, watch_probability: 0.0 }
    }

    /// getData with `read_percent`, the rest `write`.
    pub fn read_write(read_percent: u32, write: Op) -> OpMix {
        let mut mix = OpMix::only(write);
        mix.percents[write as usize] = 100u32.saturating_sub(read_percent);
        mix.percents[Op::GetData as usize] += read_percent.min(100);
        mix
    }

    /// `getData=70,setData=20,multi=10`: ops not named get 0%.
    pub fn parse_percents(text: &str) -> Result<[u32; 6], String> {
        let mut percents = [0; 6];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, percent) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not OP=PERCENT (e.g. getData=90)"))?;
            let op: Op = name.trim().parse()?;
            percents[op as usize] =
                percent.trim().parse().map_err(|_| format!("{part:?}: {percent:?} is not a percentage"))?;
        }
        Ok(percents)
    }

    pub fn validate(&self) -> Result<(), BenchError> {
        let total: u32 = self.percents.iter().sum();
        if total != 100 {
            return Err(BenchError::Config(format!("the op percentages add up to {total}, not 100")));
        }
        if !(1..=MULTI_OPS_MAX).contains(&self.multi_ops) {
            return Err(BenchError::Config(format!("--multi-ops must be 1..={MULTI_OPS_MAX}")));
        }
        if !(0.0..=1.0).contains(&self.watch_probability) {
            return Err(BenchError::Config("--watch-prob must be in 0..=1".into()));
        }
        Ok(())
    }

    /// Whether any op writes.
    pub fn writes(&self) -> bool {
        Op::ALL.iter().any(|(_, op)| !op.is_read() && self.percents[*op as usize] > 0)
    }

    fn describe_op(&self, op: Op) -> String {
        match op {
            Op::Create => format!("create({})", self.create_kind),
            Op::Multi => format!("multi({} setData)", self.multi_ops),
            other => other.name().to_string(),
        }
    }

    /// `setData`, `create(ephemeral-sequential)`, `getData 90%, setData 10%`, with the watch
    /// probability when reads may set watches.
    pub fn describe(&self) -> String {
        let used: Vec<(Op, u32)> = Op::ALL
            .iter()
            .map(|(_, op)| (*op, self.percents[*op as usize]))
            .filter(|(_, p)| *p > 0)
            .collect();
        let mut text = match used.as_slice() {
            [(op, _)] => self.describe_op(*op),
            _ => used
                .iter()
                .map(|(op, p)| format!("{} {p}%", self.describe_op(*op)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        if self.watch_probability > 0.0 && used.iter().any(|(op, _)| op.is_read()) {
            text += &format!(", watch p={}", self.watch_probability);
        }
        text
    }
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
    /// Cumulative percentages, indexed as [`Op::ALL`].
    thresholds: [u32; 6],
    data: Vec<u8>,
    /// A read's body after the path: `watch = false`, `watch = true`.
    read_after_path: [Vec<u8>; 2],
    /// setData's body after the path: data and version.
    set_after_path: Vec<u8>,
    /// create's body after the path: data, ACL and flags.
    create_after_path: Vec<u8>,
    /// The `MultiHeader` before each setData of a multi, and the one that ends it.
    multi_set_header: Vec<u8>,
    multi_end: Vec<u8>,
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
        let read = |watch| after_path(PathWatchRequest { path: String::new(), watch });
        let mut thresholds = mix.percents;
        for i in 1..thresholds.len() {
            thresholds[i] += thresholds[i - 1];
        }
        let multi_header = |op: i32, done| MultiHeader { op, done, err: -1 }.to_bytes();
        Templates {
            base: base.to_string(),
            key_paths: (0..keys).map(|i| format!("{base}/k{i}")).collect(),
            create_dir: format!("{base}/c"),
            mix,
            thresholds,
            read_after_path: [read(false), read(true)],
            set_after_path: after_path(SetDataRequest {
                path: String::new(),
                data: Some(data.clone()),
                version: -1,
            }),
            create_after_path: after_path(Self::create_request(
                String::new(),
                data.clone(),
                mix.create_kind.flag(),
            )),
            multi_set_header: multi_header(OpCode::SetData as i32, false),
            multi_end: multi_header(-1, true),
            data,
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
        CreateRequest { path, data: Some(data), acl: open_acl_unsafe(), flags }
    }

    fn random_key(&self, rng: &mut SplitMix64) -> &str {
        &self.key_paths[rng.below(self.key_paths.len() as u64) as usize]
    }

    /// Draws the next op of a session.
    pub fn pick(&self, rng: &mut SplitMix64) -> Op {
        let draw = rng.below(100) as u32;
        let index = self.thresholds.iter().position(|t| draw < *t).unwrap_or(Op::ALL.len() - 1);
        Op::ALL[index].1
    }

    /// Draws the next op of a session and appends its frame; `session` and `serial` name a
    /// non-sequential create.
    pub fn push_next(
        &self,
        out: &mut Vec<u8>,
        xid: i32,
        rng: &mut SplitMix64,
        session: usize,
        serial: u64,
    ) -> Op {
        let op = self.pick(rng);
        let watch = op.is_read()
            && self.mix.watch_probability > 0.0
            && (rng.next_u64() as f64) < self.mix.watch_probability * u64::MAX as f64;
        let read_after_path = self.read_after_path[usize::from(watch)].as_slice();
        let created;
        let (opcode, path, after_path): (OpCode, &str, &[u8]) = match op {
            Op::GetData => (OpCode::GetData, self.random_key(rng), read_after_path),
            Op::Exists => (OpCode::Exists, self.random_key(rng), read_after_path),
            Op::GetChildren => (OpCode::GetChildren, &self.base, read_after_path),
            Op::SetData => (OpCode::SetData, self.random_key(rng), &self.set_after_path),
            Op::Create => {
                created = if self.mix.create_kind.is_sequential() {
                    format!("{}/s{session}-", self.create_dir)
                } else {
                    format!("{}/s{session}-{serial}", self.create_dir)
                };
                (OpCode::Create, &created, &self.create_after_path)
            }
            Op::Multi => {
                push_request_with(out, xid, OpCode::Multi as i32, |w| {
                    for _ in 0..self.mix.multi_ops {
                        w.out.extend_from_slice(&self.multi_set_header);
                        w.write_string(self.random_key(rng));
                        w.out.extend_from_slice(&self.set_after_path);
                    }
                    w.out.extend_from_slice(&self.multi_end);
                });
                return op;
            }
        };
        push_request_with(out, xid, opcode as i32, |w| {
            w.write_string(path);
            w.out.extend_from_slice(after_path);
        });
        op
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
    use ringkeeper_engine::proto::JuteWriter;

    #[test]
    fn create_kind_round_trips_through_its_name() {
        for (name, kind) in CreateKind::NAMES {
            assert_eq!(name.parse::<CreateKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), name);
        }
        assert!("sometimes".parse::<CreateKind>().is_err());
    }

    fn frame(op: OpCode, body: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        crate::wire::push_request(&mut out, 9, op as i32, &body);
        out
    }

    /// The frame `push_next` writes for a mix of only `op`, and the key the rng drew.
    fn only_frame(op: Op, watch_probability: f64, serial: u64) -> (Templates, Vec<u8>, String) {
        let mix = OpMix { watch_probability, ..OpMix::only(op) };
        let t = Templates::new("/b", 3, 5, mix);
        let mut rng = SplitMix64::new(5);
        let mut out = Vec::new();
        assert_eq!(t.push_next(&mut out, 9, &mut rng, 3, serial), op);
        let mut replay = SplitMix64::new(5);
        t.pick(&mut replay);
        if watch_probability > 0.0 {
            replay.next_u64();
        }
        let key = t.random_key(&mut replay).to_string();
        (t, out, key)
    }

    #[test]
    fn every_op_encodes_as_the_engine_records() {
        for (op, code) in [(Op::GetData, OpCode::GetData), (Op::Exists, OpCode::Exists)] {
            for watch in [0.0, 1.0] {
                let (_, out, key) = only_frame(op, watch, 0);
                let body = PathWatchRequest { path: key, watch: watch == 1.0 }.to_bytes();
                assert_eq!(out, frame(code, body), "{op:?} watch {watch}");
            }
        }
        let (_, out, _) = only_frame(Op::GetChildren, 0.0, 0);
        assert_eq!(
            out,
            frame(OpCode::GetChildren, PathWatchRequest { path: "/b".into(), watch: false }.to_bytes())
        );
        let (t, out, key) = only_frame(Op::SetData, 0.0, 0);
        let set = SetDataRequest { path: key, data: Some(t.data().to_vec()), version: -1 };
        assert_eq!(out, frame(OpCode::SetData, set.to_bytes()));
        for (kind, name) in
            [(CreateKind::Persistent, "/b/c/s3-7"), (CreateKind::EphemeralSequential, "/b/c/s3-")]
        {
            let mix = OpMix { create_kind: kind, ..OpMix::only(Op::Create) };
            let t = Templates::new("/b", 3, 5, mix);
            let mut out = Vec::new();
            t.push_next(&mut out, 9, &mut SplitMix64::new(1), 3, 7);
            assert_eq!(
                out,
                frame(OpCode::Create, Templates::create_body(name.into(), t.data().to_vec(), kind.flag()))
            );
        }
    }

    #[test]
    fn multi_is_headers_and_set_data_ending_with_done() {
        let mix = OpMix { multi_ops: 2, ..OpMix::only(Op::Multi) };
        let t = Templates::new("/b", 3, 5, mix);
        let mut rng = SplitMix64::new(2);
        let mut out = Vec::new();
        t.push_next(&mut out, 9, &mut rng, 0, 0);
        let mut replay = SplitMix64::new(2);
        t.pick(&mut replay);
        let mut body = Vec::new();
        let mut w = JuteWriter::new(&mut body);
        for _ in 0..2 {
            MultiHeader { op: OpCode::SetData as i32, done: false, err: -1 }.encode(&mut w);
            let key = t.random_key(&mut replay).to_string();
            SetDataRequest { path: key, data: Some(t.data().to_vec()), version: -1 }.encode(&mut w);
        }
        MultiHeader { op: -1, done: true, err: -1 }.encode(&mut w);
        assert_eq!(out, frame(OpCode::Multi, body));
    }

    #[test]
    fn mix_follows_percentages_and_validates() {
        let mix = OpMix {
            percents: OpMix::parse_percents("getData=50, multi=50").unwrap(),
            ..OpMix::only(Op::SetData)
        };
        mix.validate().unwrap();
        let t = Templates::new("/b", 3, 4, mix);
        let mut rng = SplitMix64::new(1);
        let picks: Vec<Op> = (0..1000).map(|_| t.pick(&mut rng)).collect();
        assert!(picks.iter().all(|op| matches!(op, Op::GetData | Op::Multi)));
        let reads = picks.iter().filter(|op| **op == Op::GetData).count();
        assert!((400..600).contains(&reads), "{reads} of 1000 reads at 50%");
        assert_eq!(OpMix::read_write(90, Op::SetData).describe(), "getData 90%, setData 10%");
        assert_eq!(OpMix::only(Op::SetData).describe(), "setData");
        assert!(OpMix { percents: [50, 0, 0, 0, 0, 0], ..mix }.validate().is_err());
        assert!(OpMix { watch_probability: 1.5, ..mix }.validate().is_err());
        assert!(OpMix::parse_percents("getData").is_err());
        assert!(OpMix::parse_percents("nap=3").is_err());
    }
}
