//! Authentication: the [`Authenticator`] every connection goes through, what it sees and
//! answers, and the two the standalone server offers — JWT ([`JwtAuthenticator`]) and
//! the insecure development mode ([`DevAuthenticator`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::{LocalFuture, UpgradeInfo};
use crate::auth::jwt::JwtVerifier;
use crate::id::ClientId;

/// What a client sent in `{"event":"authenticate","data":…}`, and what its upgrade
/// request said.
#[derive(Debug)]
pub struct AuthRequest {
    /// The connection's id.
    pub client_id: ClientId,
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// The raw `data` member, if any.
    pub data: Option<Box<RawValue>>,
    /// The upgrade request's headers (cookies included), path and query: an application
    /// whose users hold a session authenticates the socket by it (see
    /// [`UpgradeInfo::cookie`]).
    pub upgrade: UpgradeInfo,
}

impl AuthRequest {
    /// `data.token` when it is a non-empty string.
    pub fn token(&self) -> Option<String> {
        self.string_field("token")
    }

    /// `data.<name>` when it is a non-empty string.
    pub fn string_field(&self, name: &str) -> Option<String> {
        let data = self.data.as_ref()?;
        let value: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(data.get()).ok()?;
        match value.get(name)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }
}

/// Who an accepted client is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The user id: the client is indexed under it and reachable by user. `None` leaves
    /// `userId` out of `connected` and out of the users index.
    pub user_id: Option<String>,
    /// Free-form metadata handed to the `on_connect` hook.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The authenticator could not decide (a backend was down…): the client gets
/// "Authentication error" and close 4003. The message is logged, never sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("authenticator failed: {0}")]
pub struct AuthError(pub String);

/// Decides whether a client may connect. `Ok(None)` rejects ("Authentication failed").
pub trait Authenticator: Send + Sync + 'static {
    /// Checks one `authenticate` request.
    fn authenticate(
        &self,
        request: AuthRequest,
    ) -> LocalFuture<Result<Option<Identity>, AuthError>>;
}

/// Accepts a JWT in `data.token` verified by a [`JwtVerifier`]: `sub` becomes the user
/// id, every other claim the metadata.
pub struct JwtAuthenticator {
    verifier: Arc<JwtVerifier>,
}

impl JwtAuthenticator {
    /// Authenticates with `verifier`.
    pub fn new(verifier: JwtVerifier) -> Self {
        JwtAuthenticator {
            verifier: Arc::new(verifier),
        }
    }

    fn identity(&self, request: &AuthRequest) -> Option<Identity> {
        let token = request.token()?;
        match self.verifier.verify(&token) {
            Ok(verified) => Some(Identity {
                user_id: verified.user_id,
                metadata: verified.metadata,
            }),
            Err(err) => {
                tracing::debug!(client = %request.client_id, "jwt rejected: {err}");
                None
            }
        }
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(
        &self,
        request: AuthRequest,
    ) -> LocalFuture<Result<Option<Identity>, AuthError>> {
        Box::pin(std::future::ready(Ok(self.identity(&request))))
    }
}

/// INSECURE development mode: any non-empty `data.token` is accepted as the user id.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevAuthenticator;

impl Authenticator for DevAuthenticator {
    fn authenticate(
        &self,
        request: AuthRequest,
    ) -> LocalFuture<Result<Option<Identity>, AuthError>> {
        let identity = request.token().map(|token| Identity {
            user_id: Some(token),
            metadata: serde_json::Map::new(),
        });
        Box::pin(std::future::ready(Ok(identity)))
    }
}

/// Adapts a closure `Fn(AuthRequest) -> impl Future<Output = Result<Option<Identity>, AuthError>>`.
pub(crate) struct FnAuthenticator<F>(pub F);

impl<F, Fut> Authenticator for FnAuthenticator<F>
where
    F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Identity>, AuthError>> + 'static,
{
    fn authenticate(
        &self,
        request: AuthRequest,
    ) -> LocalFuture<Result<Option<Identity>, AuthError>> {
        Box::pin((self.0)(request))
    }
}
