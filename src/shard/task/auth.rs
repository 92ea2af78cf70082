//! Authentication, as the connection task runs it: the authenticator, then the
//! encryption negotiation (the embedder's handshake, or the built-in ECDH off the shard
//! thread), then the verdict applied on the shard; and the deadline.

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::ConnTask;
use crate::conn::encryption::Encryption;
use crate::conn::machine::AuthVerdict;
use crate::hooks::{AuthRequest, Handshake, HandshakeRequest, Identity, LocalFuture, UpgradeInfo};
use crate::id::ClientId;

/// The authenticator's and the negotiation's answer, awaited by the task.
pub(super) type AuthFuture = LocalFuture<Box<AuthOutcome>>;

/// Extra members of `connected.data` (`serverPublicKey`, `salt`, or the embedder's).
type Extra = serde_json::Map<String, serde_json::Value>;

/// The authenticator's answer combined with the encryption handshake's.
pub(super) enum AuthOutcome {
    Accepted {
        identity: Identity,
        extra: Extra,
        encryption: Option<Encryption>,
    },
    Refused(AuthVerdict),
}

impl ConnTask {
    /// Starts the authenticator (and, after it, the negotiation) on `data`.
    pub(super) fn start_auth(&mut self, data: Option<&RawValue>) {
        let Some(authenticator) = self.shard.ctx.hooks.authenticator.clone() else {
            self.shard.reject(self.slot, AuthVerdict::Failed);
            return;
        };
        let upgrade = self.upgrade.take();
        let request = AuthRequest {
            client_id: self.client_id,
            remote_addr: self.peer,
            data: data.map(ToOwned::to_owned),
            upgrade: upgrade.map_or_else(|| UpgradeInfo::bare(self.peer), |info| *info),
        };
        let negotiation = self.negotiation(&request, data);
        let authenticating = authenticator.authenticate(request);
        let client_id = self.client_id;
        self.auth = Some(Box::pin(async move {
            Box::new(match authenticating.await {
                Ok(Some(identity)) => negotiation.run(identity).await,
                Ok(None) => AuthOutcome::Refused(AuthVerdict::Rejected),
                Err(err) => {
                    tracing::warn!(client = %client_id, "{err}");
                    AuthOutcome::Refused(AuthVerdict::Failed)
                }
            })
        }));
    }

    fn negotiation(&self, request: &AuthRequest, data: Option<&RawValue>) -> Negotiation {
        Negotiation {
            client_id: self.client_id,
            require: self.shard.config().require_encryption,
            handshake: self.shard.ctx.hooks.handshake.clone(),
            public_key: self.offered_key(request),
            data: data.map(|d| Arc::from(d.to_owned())),
        }
    }

    /// The client's `publicKey`, when encryption is negotiated: always when required,
    /// and when offered only if `optional_encryption` is set (Ignis ignores it).
    fn offered_key(&self, request: &AuthRequest) -> Option<String> {
        let config = self.shard.config();
        let negotiate = config.require_encryption || config.optional_encryption;
        negotiate
            .then(|| request.string_field("publicKey"))
            .flatten()
    }

    /// Applies the verdict on the shard.
    pub(super) fn on_auth_result(&mut self, outcome: AuthOutcome) {
        match outcome {
            AuthOutcome::Accepted {
                identity,
                extra,
                encryption,
            } => self.shard.accept(self.slot, identity, &extra, encryption),
            AuthOutcome::Refused(verdict) => {
                if verdict != AuthVerdict::HandshakeFailed {
                    let admission = &self.shard.ctx.http.admission;
                    admission.auth_failed(self.peer.ip(), Instant::now());
                }
                self.shard.reject(self.slot, verdict);
            }
        }
    }

    /// The auth timer fired: close with 4001 if the deadline has really passed.
    pub(super) fn on_deadline(&mut self) {
        let now = Instant::now();
        let expired = self.shard.with_entry(self.slot, |entry, dirty| {
            let expired = entry.conn.check_auth_deadline(now);
            if expired {
                entry.closed(self.slot, dirty);
            }
            expired
        });
        if expired == Some(true) {
            self.auth = None;
            self.shard.metrics.timeouts.inc();
        }
    }
}

/// The encryption half of authentication, run after the authenticator accepted.
struct Negotiation {
    client_id: ClientId,
    require: bool,
    handshake: Option<Arc<dyn Handshake>>,
    public_key: Option<String>,
    data: Option<Arc<RawValue>>,
}

impl Negotiation {
    async fn run(self, identity: Identity) -> AuthOutcome {
        let accepted = |extra, encryption| AuthOutcome::Accepted {
            identity,
            extra,
            encryption,
        };
        let negotiated = match (self.handshake.clone(), self.public_key.clone()) {
            (Some(_), _) if !self.require => Ok((Extra::new(), None)),
            (Some(handshake), _) => self.embedder(handshake).await,
            (None, Some(key)) => built_in(key).await,
            (None, None) if self.require => Err(()),
            (None, None) => Ok((Extra::new(), None)),
        };
        match negotiated {
            Ok((extra, encryption)) => accepted(extra, encryption),
            Err(()) => AuthOutcome::Refused(AuthVerdict::HandshakeFailed),
        }
    }

    /// The embedder's handshake (Ignis `handshakeFn`).
    async fn embedder(
        self,
        handshake: Arc<dyn Handshake>,
    ) -> Result<(Extra, Option<Encryption>), ()> {
        let request = HandshakeRequest {
            client_id: self.client_id,
            data: self.data,
        };
        let extra = handshake.handshake(request).await.ok_or(())?;
        Ok((extra, Some(Encryption::Transformer)))
    }
}

/// The built-in Ignis ECDH: two P-256 operations (~0.3 ms), off the shard thread so other
/// clients never wait.
async fn built_in(public_key: String) -> Result<(Extra, Option<Encryption>), ()> {
    let exchange =
        tokio::task::spawn_blocking(move || crate::crypto::accept_client_key(&public_key));
    let Ok(Ok((cipher, reply))) = exchange.await else {
        return Err(());
    };
    let mut extra = Extra::new();
    extra.insert("serverPublicKey".into(), reply.server_public_key.into());
    extra.insert("salt".into(), reply.salt.into());
    Ok((extra, Some(Encryption::Session(Box::new(cipher)))))
}
