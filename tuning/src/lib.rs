//! `ringkeeper-tune`: sizes a ringkeeper server to its host, as Seastar's iotune and Redpanda's
//! `rpk iotune` / `rpk redpanda tune` do for theirs.
//!
//! Flow: [`probe`] reads the host (CPU topology, NIC IRQ placement, the disks behind dataDir
//! and dataLogDir) and measures it (fdatasync latency, the write-latency-vs-batch-size curve
//! on the log role's own io_uring/O_DIRECT path, cross-core message latency) into a
//! [`probe::Probe`], saved as JSON. [`recommend`] turns a probe into the `ringkeeper.*` zoo.cfg
//! lines (core layout, group-commit limits, queue depth), each with its reason; it is a pure
//! function, so recorded probes of other hosts test it. [`apply`] writes those lines into a
//! zoo.cfg (backup first, owned lines replaced, everything else kept). [`check`] is the
//! production checklist. [`report`] prints a probe as text and draws its curves as SVG.

pub mod apply;
pub mod check;
pub mod error;
pub mod measure;
pub mod probe;
pub mod recommend;
pub mod report;
pub mod stats;

pub use error::TuneError;
