//! What was built: the crate version, the commit and the build date, stamped by
//! `build.rs`. Read by `shardcast --version`, the `shardcast_build_info` metric and the
//! dashboard.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from (12 hex digits), or `unknown` outside a git
/// checkout without `SHARDCAST_GIT_COMMIT` set.
pub const COMMIT: &str = env!("SHARDCAST_GIT_COMMIT");

/// The build date, UTC `YYYY-MM-DD` (`SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("SHARDCAST_BUILD_DATE");

/// `0.1.0 (commit 0cde6206df24, built 2026-12-01)`: the long version line.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SHARDCAST_GIT_COMMIT"),
    ", built ",
    env!("SHARDCAST_BUILD_DATE"),
    ")"
);
