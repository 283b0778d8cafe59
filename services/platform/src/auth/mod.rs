//! Access tokens: EdDSA (Ed25519) JWTs signed by the user service and verified by
//! every service with only the public key. Logout and password change revoke a
//! session by writing its id to the shared key-value store, which every verifier
//! checks, so a revoked token stops working everywhere at once.

mod extractor;
pub mod internal;
mod keys;
mod tokens;

pub use extractor::{AuthUser, SignedUser};
pub use keys::{KeyPair, KeySettings};
pub use tokens::{Authenticator, Claims, Role, TokenSigner};

/// Key of the revocation marker of one session, shared by signer and verifiers.
pub fn revoked_session_key(session_id: &str) -> String {
    format!("auth:revoked-session:{session_id}")
}
