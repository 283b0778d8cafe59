//! Secrets at rest: personal fields under AES-256-GCM, e-mail lookups through a keyed
//! hash, passwords under Argon2id, refresh tokens and codes stored only as hashes.

use aes_gcm::{
    aead::{Aead, KeyInit},
    Aes256Gcm, Nonce,
};
use argon2::{
    password_hash::SaltString, Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::configuration::PasswordHashing;

/// Version tag of the ciphertext format, so keys can be rotated later.
const CIPHER_VERSION: &str = "v1";

/// A stored secret that does not open, or a password that cannot be hashed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("unknown ciphertext version")]
    UnknownVersion,
    #[error("the ciphertext is not base64")]
    NotBase64(#[source] base64::DecodeError),
    #[error("the ciphertext is too short")]
    TooShort,
    #[error("the ciphertext does not decrypt with the configured data key")]
    WrongKey,
    #[error("the decrypted text is not UTF-8")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    #[error("argon2 parameters")]
    Parameters(#[source] argon2::Error),
    #[error("hashing a password failed")]
    Hashing(#[source] argon2::password_hash::Error),
    #[error("the stored password hash does not parse")]
    StoredHash(#[source] argon2::password_hash::Error),
    #[error("the password hashing task did not finish")]
    Task(#[source] tokio::task::JoinError),
}

#[derive(Clone)]
pub struct FieldCipher {
    aead: Aes256Gcm,
    lookup_key: [u8; 32],
}

impl FieldCipher {
    pub fn new(key: &[u8; 32]) -> Self {
        // A separate key for lookups, derived so one configured secret suffices.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"goodsmall e-mail lookup v1");
        let lookup_key = mac.finalize().into_bytes().into();
        Self { aead: Aes256Gcm::new(key.into()), lookup_key }
    }

    /// `v1:` + base64(nonce ‖ ciphertext); a fresh random nonce every time.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext =
            self.aead.encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes()).expect("AES-GCM encryption");
        let mut blob = nonce.to_vec();
        blob.extend(ciphertext);
        format!("{CIPHER_VERSION}:{}", STANDARD.encode(blob))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let encoded = stored.strip_prefix("v1:").ok_or(CryptoError::UnknownVersion)?;
        let blob = STANDARD.decode(encoded).map_err(CryptoError::NotBase64)?;
        if blob.len() <= 12 {
            return Err(CryptoError::TooShort);
        }
        let (nonce, ciphertext) = blob.split_at(12);
        let plain = self.aead.decrypt(Nonce::from_slice(nonce), ciphertext).map_err(|_| CryptoError::WrongKey)?;
        String::from_utf8(plain).map_err(CryptoError::NotUtf8)
    }

    /// Deterministic keyed hash (hex) for finding an account by e-mail without
    /// storing the address in clear.
    pub fn lookup_hash(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.lookup_key).expect("HMAC key");
        mac.update(value.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

pub fn sha256_hex(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes, URL-safe base64: refresh tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// 16 random bytes as hex: session ids.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

#[derive(Clone)]
pub struct PasswordHasherConfig {
    params: Params,
}

impl PasswordHasherConfig {
    pub fn new(settings: &PasswordHashing) -> Result<Self, CryptoError> {
        let params = Params::new(settings.memory_kib, settings.iterations, 1, None).map_err(CryptoError::Parameters)?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashing is CPU-heavy; it runs on the blocking pool, not the request threads.
    pub async fn hash(&self, password: String) -> Result<String, CryptoError> {
        let argon2 = self.argon2();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2.hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(CryptoError::Hashing)
        })
        .await
        .map_err(CryptoError::Task)?
    }

    pub async fn verify(&self, password: String, stored: String) -> Result<bool, CryptoError> {
        let argon2 = self.argon2();
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored).map_err(CryptoError::StoredHash)?;
            Ok(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(CryptoError::Task)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_with_fresh_nonces() {
        let cipher = FieldCipher::new(&[7; 32]);
        let a = cipher.encrypt("Seoul, Mapo-gu");
        let b = cipher.encrypt("Seoul, Mapo-gu");
        assert_ne!(a, b, "same plaintext must not give the same ciphertext");
        assert!(!a.contains("Seoul"));
        assert_eq!(cipher.decrypt(&a).unwrap(), "Seoul, Mapo-gu");
    }

    #[test]
    fn a_different_key_cannot_decrypt() {
        let stored = FieldCipher::new(&[7; 32]).encrypt("secret");
        assert!(FieldCipher::new(&[8; 32]).decrypt(&stored).is_err());
    }

    #[test]
    fn lookup_hash_is_stable_and_keyed() {
        let a = FieldCipher::new(&[7; 32]);
        assert_eq!(a.lookup_hash("x@y.io"), a.lookup_hash("x@y.io"));
        assert_ne!(a.lookup_hash("x@y.io"), FieldCipher::new(&[8; 32]).lookup_hash("x@y.io"));
        assert_eq!(a.lookup_hash("x@y.io").len(), 64);
    }

    #[tokio::test]
    async fn passwords_verify() {
        let hasher = PasswordHasherConfig::new(&PasswordHashing { memory_kib: 1024, iterations: 1 }).unwrap();
        let hash = hasher.hash("hunter2!x".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("hunter2!x".into(), hash.clone()).await.unwrap());
        assert!(!hasher.verify("hunter3!x".into(), hash).await.unwrap());
    }
}
