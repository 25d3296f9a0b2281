//! Channel ends between roles (network, data, log), the same to the roles whatever the
//! executor layout ([`crate::config::Executors`]).
//!
//! When two roles run as tasks on one glommio executor they talk over a local channel: a
//! send wakes the receiving task in the same run queue (no eventfd write, no syscall, no
//! thread switch). When they run on executors of their own, over a shared channel: a
//! lock-free ring between threads, where waking an idle receiver costs an eventfd write and
//! the receiving thread's wake-up. The runtime creates the ends and picks the kind at
//! start-up; a shared end is connected on the executor that uses it ([`connect_sender`],
//! [`connect_receiver`]).
//! Invariants: items arrive in send order; a bounded end makes `send` wait for room, never
//! drop; `try_send` on a full or closed end returns the item's loss as [`NotSent`].

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};

/// The sending end of a role link.
pub enum Sender<T: Send> {
    /// Both roles on this executor.
    Local(LocalSender<T>),
    /// The receiving role on another executor.
    Shared(ConnectedSender<T>),
}

/// The receiving end of a role link.
pub enum Receiver<T: Send> {
    /// Both roles on this executor.
    Local(LocalReceiver<T>),
    /// The sending role on another executor.
    Shared(ConnectedReceiver<T>),
}

/// An item was not sent: the receiver is gone, or (`try_send`) the link is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the receiving role is gone or its queue is full")]
pub struct NotSent;

/// A link whose ends are both used on the current executor, holding at most `capacity` items.
pub fn local_bounded<T: Send>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = local_channel::new_bounded(capacity);
    (Sender::Local(tx), Receiver::Local(rx))
}

/// A link on the current executor without a bound: for a sender that must never wait
/// (the data role), whose in-flight work is bounded elsewhere.
pub fn local_unbounded<T: Send>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = local_channel::new_unbounded();
    (Sender::Local(tx), Receiver::Local(rx))
}

/// Connects the sending end of a shared channel on the executor that will use it.
pub async fn connect_sender<T: Send + 'static>(end: SharedSender<T>) -> Sender<T> {
    Sender::Shared(end.connect().await)
}

/// Connects the receiving end of a shared channel on the executor that will use it.
pub async fn connect_receiver<T: Send + 'static>(end: SharedReceiver<T>) -> Receiver<T> {
    Receiver::Shared(end.connect().await)
}

impl<T: Send> Sender<T> {
    /// Sends `item`, waiting for room on a bounded link.
    pub async fn send(&self, item: T) -> Result<(), NotSent> {
        match self {
            Sender::Local(tx) => tx.send(item).await.map_err(|_| NotSent),
            Sender::Shared(tx) => tx.send(item).await.map_err(|_| NotSent),
        }
    }

    /// Sends `item` if there is room now.
    pub fn try_send(&self, item: T) -> Result<(), NotSent> {
        match self {
            Sender::Local(tx) => tx.try_send(item).map_err(|_| NotSent),
            Sender::Shared(tx) => tx.try_send(item).map_err(|_| NotSent),
        }
    }
}

impl<T: Send> Receiver<T> {
    /// The next item; `None` once every sender is gone and the link is empty.
    pub async fn recv(&self) -> Option<T> {
        match self {
            Receiver::Local(rx) => rx.recv().await,
            Receiver::Shared(rx) => rx.recv().await,
        }
    }

    /// The next item if one is queued now (never waits; `None` also when the link is empty).
    pub async fn recv_ready(&self) -> Option<T> {
        futures_lite::future::poll_once(self.recv()).await.flatten()
    }
}
