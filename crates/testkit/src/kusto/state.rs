//! What the receiver knows: its fixed configuration, the databases and tables with their
//! rows, issued tokens, stored blobs, scripted faults and what it recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::formats::Mapping;
use super::{
    KustoStats, MgmtCommand, QueuedIngestion, SizeBasis, StreamingFault, StreamingRequest,
};

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Store ingested rows (off: only counted in the stats).
    pub(crate) keep_rows: bool,
    pub(crate) url: String,
    pub(crate) service_resource_id: String,
    pub(crate) auth_metadata: bool,
    pub(crate) login_mfa_required: bool,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) tenant: Option<String>,
    pub(crate) token_lifetime: Duration,
    pub(crate) require_auth: bool,
    pub(crate) max_streaming_bytes: usize,
    pub(crate) size_basis: SizeBasis,
    pub(crate) auto_create: bool,
    pub(crate) strict_client_headers: bool,
    /// Streaming JSON without `mappingName` is refused (the REST documentation's rule).
    pub(crate) streaming_mapping_required: bool,
    pub(crate) sas_signature: String,
    pub(crate) authorization_context: String,
}

/// A table: schema, ingestion mappings (by lowercase kind, then name) and rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<(String, String)>,
    pub(crate) mappings: BTreeMap<(String, String), Mapping>,
    pub(crate) rows: Vec<Value>,
}

/// A token the receiver accepts, with its expiry (`None`: never expires).
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub(crate) expires: Option<Instant>,
    pub(crate) revoked: bool,
}

/// Everything that changes while running, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// database → table → table.
    pub(crate) databases: BTreeMap<String, BTreeMap<String, Table>>,
    pub(crate) tokens: HashMap<String, TokenInfo>,
    /// Blob store: `container/name` (percent-decoded) → bytes.
    pub(crate) blobs: HashMap<String, Vec<u8>>,
    /// Uncommitted blocks: (`container/name`, block id) → bytes.
    pub(crate) blocks: HashMap<(String, String), Vec<u8>>,
    pub(crate) faults: VecDeque<StreamingFault>,
    pub(crate) unauthorized_next: usize,
    pub(crate) delay: Duration,
    pub(crate) streaming_enabled: bool,
    pub(crate) stats: KustoStats,
    pub(crate) streaming_requests: Vec<StreamingRequest>,
    pub(crate) mgmt_commands: Vec<MgmtCommand>,
    pub(crate) queued: Vec<QueuedIngestion>,
}

/// The state shared by the handlers and the [`super::KustoReceiver`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(config: Config, inner: Inner) -> Shared {
        Shared {
            config,
            inner: Mutex::new(inner),
        }
    }

    /// Locks the state; a poisoned lock (a handler panicked) is still usable for assertions.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// The table, creating the database and table when `auto_create` allows.
    pub(crate) fn table_mut(
        &mut self,
        db: &str,
        table: &str,
        auto_create: bool,
    ) -> Result<&mut Table, String> {
        if !self.databases.contains_key(db) {
            if !auto_create {
                return Err(format!(
                    "Entity ID '{db}' of kind 'Database' was not found."
                ));
            }
            self.databases.insert(db.to_string(), BTreeMap::new());
        }
        let tables = self
            .databases
            .get_mut(db)
            .ok_or_else(|| format!("Entity ID '{db}' of kind 'Database' was not found."))?;
        if !tables.contains_key(table) {
            if !auto_create {
                return Err(format!(
                    "Entity ID '{table}' of kind 'Table' was not found."
                ));
            }
            tables.insert(table.to_string(), Table::default());
        }
        tables
            .get_mut(table)
            .ok_or_else(|| format!("Entity ID '{table}' of kind 'Table' was not found."))
    }

    /// Whether `token` is currently accepted.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        match self.tokens.get(token) {
            Some(t) => !t.revoked && t.expires.is_none_or(|e| Instant::now() < e),
            None => false,
        }
    }
}
