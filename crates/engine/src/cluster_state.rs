//! What a node knows of the others on its database: its name, the leader lock while it holds
//! it, and whether it hears their changes (see `cluster.rs`).

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use consentric_store::{BackendKind, Leadership};

/// What this node knows of the cluster.
pub(crate) struct ClusterState {
    /// This node's name (`[cluster] node`).
    pub(crate) node: String,
    /// The leader lock, while this node holds it.
    pub(crate) leadership: Mutex<Option<Leadership>>,
    /// Whether changes announced by other nodes are being heard (always, on SQLite).
    pub(crate) following: AtomicBool,
}

impl ClusterState {
    pub(crate) fn new(node: String, kind: BackendKind) -> Self {
        ClusterState {
            node,
            leadership: Mutex::new(None),
            following: AtomicBool::new(kind == BackendKind::Sqlite),
        }
    }
}
