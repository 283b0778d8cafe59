//! Access tokens: EdDSA (Ed25519) JWTs signed by the user service and verified by
//! every service with only the public key. Logout and password change revoke a
//! session in the user service's database and write its id to the shared key-value
//! store, which every verifier checks, so a revoked token stops working everywhere at
//! once. The store may lose its keys (a flush, a restart without persistence): the user
//! service then writes the revocations in force back from its database, and until it
//! has, verifiers answer 503 rather than let a revoked token through.

mod extractor;
pub mod internal;
mod keys;
mod tokens;

pub use extractor::{AuthUser, BearerToken, SignedUser};
pub use keys::{KeyPair, KeySettings};
pub use tokens::{Authenticator, Claims, Role, TokenSigner, UnknownRole};

/// Key of the revocation marker of one session, shared by signer and verifiers.
pub fn revoked_session_key(session_id: &str) -> String {
    format!("auth:revoked-session:{session_id}")
}

/// Present (holding the store's id, `Kv::store_id`) once every revocation in force is in
/// the store; a store that lost its keys lacks it until the user service has written
/// them back from its database.
pub const REVOCATIONS_LOADED_KEY: &str = "auth:revocations-loaded";

/// Held by the user service while it writes the revocations back (`Kv::set_all_if`).
pub const REVOCATIONS_GUARD_KEY: &str = "auth:revocations-rebuilding";
