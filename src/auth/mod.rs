//! Token checks that need no engine: JWT verification with one configured algorithm, and
//! minting ([`jwt`]). The [`Authenticator`](crate::hooks::Authenticator) that uses it for
//! connections is [`JwtAuthenticator`](crate::hooks::JwtAuthenticator).

pub mod jwt;
