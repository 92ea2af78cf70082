//! The HTTP API's Bearer key, shared by every shard and replaceable while the engine runs
//! ([`crate::Engine::set_api_key`], used by the standalone server on SIGHUP).
//!
//! Contract: one `RwLock` read per HTTP request that needs the key (the `/api/` routes);
//! a write only when the key is replaced. Nothing on the message delivery path touches
//! it. A poisoned lock is still read (the value is a plain `Option`, never half-written).

use std::sync::{Arc, PoisonError, RwLock};

/// The current API key (`None`: the `/api/` routes that need it answer 401).
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiKey(Arc<RwLock<Option<Arc<str>>>>);

impl ApiKey {
    /// A key cell holding `key`.
    pub fn new(key: Option<String>) -> Self {
        ApiKey(Arc::new(RwLock::new(key.map(Arc::from))))
    }

    /// The key in force now.
    pub fn get(&self) -> Option<Arc<str>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the key; requests that arrive after it see the new one.
    pub fn set(&self, key: Option<String>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = key.map(Arc::from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_key_is_seen_by_every_clone() {
        let key = ApiKey::new(Some("old".into()));
        let shard_copy = key.clone();
        key.set(Some("new".into()));
        assert_eq!(shard_copy.get().as_deref(), Some("new"));
        key.set(None);
        assert_eq!(shard_copy.get(), None);
    }
}
