//! Identifiers: a connection's [`ClientId`] and the process's [`ServerId`].

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A connection's id: a UUID v4 given at upgrade, printed lowercase and hyphenated like
/// Ignis' `crypto.randomUUID()`.
///
/// ```
/// use shardcast::ClientId;
///
/// let id: ClientId = "5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab".parse().unwrap();
/// assert_eq!(id.to_string(), "5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab");
/// assert!("5B0C1F3E-8A2D-4C6B-9E7F-0123456789AB".parse::<ClientId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Uuid);

impl ClientId {
    /// A fresh random id.
    pub fn new_v4() -> Self {
        ClientId(Uuid::new_v4())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Parses the canonical lowercase hyphenated form only, so that an id matches exactly
    /// the string Ignis would compare it with.
    pub fn parse_canonical(s: &str) -> Option<Self> {
        let id = Uuid::try_parse(s).ok()?;
        let mut buf = Uuid::encode_buffer();
        (id.hyphenated().encode_lower(&mut buf) == s).then_some(ClientId(id))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0.hyphenated())
    }
}

impl FromStr for ClientId {
    type Err = InvalidClientId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_canonical(s).ok_or(InvalidClientId)
    }
}

/// A string that is not a canonical lowercase UUID, so it cannot name a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a client id (expected a lowercase hyphenated UUID)")]
pub struct InvalidClientId;

/// This process's id in Redis envelopes (a random UUID); envelopes carrying it are skipped
/// because this process already delivered them locally.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerId(String);

impl ServerId {
    /// A fresh random server id.
    pub fn random() -> Self {
        ServerId(Uuid::new_v4().hyphenated().to_string())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_only_in_canonical_form() {
        let id = ClientId::new_v4();
        assert_eq!(id.to_string().parse::<ClientId>(), Ok(id));
        assert!(id.to_string().to_uppercase().parse::<ClientId>().is_err());
        assert!("not-a-uuid".parse::<ClientId>().is_err());
    }
}
