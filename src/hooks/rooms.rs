//! Room validation: the [`RoomValidator`] that decides which requested rooms a client may
//! join (after the name rules of [`crate::rooms`]). With no validator configured every
//! join is rejected (Ignis behaviour).

use std::future::Future;
use std::sync::Arc;

use super::LocalFuture;
use crate::id::ClientId;
use crate::rooms::glob::RoomPolicy;

/// A client's request to join rooms, after the name rules.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The connection asking.
    pub client_id: ClientId,
    /// Its user id, if any.
    pub user_id: Option<Arc<str>>,
    /// The rooms asked for (valid names only).
    pub rooms: Vec<String>,
}

/// Decides which of the requested rooms a client may join; returns the allowed subset
/// (anything not requested is ignored).
pub trait RoomValidator: Send + Sync + 'static {
    /// Returns the allowed rooms.
    fn validate(&self, request: JoinRequest) -> LocalFuture<Vec<String>>;
}

/// The standalone server's `--allow-rooms` globs.
impl RoomValidator for RoomPolicy {
    fn validate(&self, request: JoinRequest) -> LocalFuture<Vec<String>> {
        let user = request.user_id.as_deref();
        let allowed = request
            .rooms
            .iter()
            .filter(|room| self.allows(room, user))
            .cloned()
            .collect();
        Box::pin(std::future::ready(allowed))
    }
}

/// Adapts a closure `Fn(JoinRequest) -> impl Future<Output = Vec<String>>`.
pub(crate) struct FnValidator<F>(pub F);

impl<F, Fut> RoomValidator for FnValidator<F>
where
    F: Fn(JoinRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<String>> + 'static,
{
    fn validate(&self, request: JoinRequest) -> LocalFuture<Vec<String>> {
        Box::pin((self.0)(request))
    }
}
