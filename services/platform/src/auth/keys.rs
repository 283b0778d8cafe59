//! Ed25519 key material in the PEM forms `openssl genpkey -algorithm ed25519` writes.

use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::{
    rand::{SecureRandom, SystemRandom},
    signature::{Ed25519KeyPair, KeyPair as _},
};
use serde::Deserialize;

use crate::{
    configuration::{ConfigError, ExposeSecret, SecretString},
    secret_file::{self, SecretFileError},
};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// DER prefix of an Ed25519 private key in PKCS#8 v1 (RFC 8410), as `openssl genpkey`
/// writes it; the 32-byte seed follows. ring's own v2 form (with the public key) is
/// refused by OpenSSL 3.0 ("unsupported"); v1 is read by both.
const PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// PKCS#8 PEM private key; only the user service (the signer) has it.
    pub private_key_pem: Option<SecretString>,
    /// SPKI PEM public key; every service verifies tokens with it.
    pub public_key_pem: Option<String>,
    pub issuer: Option<String>,
}

impl KeySettings {
    pub fn issuer(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| "goodsmall".into())
    }

    pub fn public_key(&self, key: &str) -> Result<String, ConfigError> {
        let pem = self.public_key_pem.clone().ok_or_else(|| {
            ConfigError::invalid(
                &format!("{key}.public_key_pem"),
                "is required (create a pair with `goodsmall-user keygen`)",
            )
        })?;
        jsonwebtoken::DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| {
            ConfigError::invalid(&format!("{key}.public_key_pem"), format!("is not an Ed25519 public key PEM: {e}"))
        })?;
        Ok(pem)
    }

    pub fn private_key(&self, key: &str) -> Result<SecretString, ConfigError> {
        let pem = self.private_key_pem.clone().ok_or_else(|| {
            ConfigError::invalid(
                &format!("{key}.private_key_pem"),
                "is required (create a pair with `goodsmall-user keygen`)",
            )
        })?;
        jsonwebtoken::EncodingKey::from_ed_pem(pem.expose_secret().as_bytes()).map_err(|e| {
            ConfigError::invalid(&format!("{key}.private_key_pem"), format!("is not an Ed25519 PKCS#8 PEM: {e}"))
        })?;
        Ok(pem)
    }
}

/// A signing key pair as PEM text.
#[derive(Clone)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

/// The private key never shows in `Debug` output.
impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("private_pem", &"[REDACTED]").field("public_pem", &self.public_pem).finish()
    }
}

impl KeyPair {
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).expect("system randomness");
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed");
        let spki = [&SPKI_PREFIX[..], pair.public_key().as_ref()].concat();
        let pkcs8 = [&PKCS8_V1_PREFIX[..], &seed].concat();
        Self { private_pem: pem("PRIVATE KEY", &pkcs8), public_pem: pem("PUBLIC KEY", &spki) }
    }

    /// The one-process default keeps its pair in the data folder so that tokens
    /// survive a restart of the shop. The private key is made readable by its owner
    /// only, and a private key file others may read is refused (naming the file).
    pub fn load_or_generate(dir: &Path) -> Result<Self, SecretFileError> {
        let (private, public) = (dir.join("jwt-ed25519.key"), dir.join("jwt-ed25519.pub"));
        let read_public =
            || std::fs::read_to_string(&public).map_err(|source| SecretFileError::Io { path: public.clone(), source });
        if let Some(private_pem) = secret_file::read(&private)? {
            if public.exists() {
                return Ok(Self { private_pem, public_pem: read_public()? });
            }
        }
        secret_file::create_private_dir(dir)?;
        let pair = Self::generate();
        secret_file::write(&private, &pair.private_pem)?;
        // Not a secret, but every file in the data folder is its owner's only.
        secret_file::write(&public, &pair.public_pem)?;
        Ok(pair)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_generated_private_key_is_private_and_kept() {
        let dir = std::env::temp_dir().join(format!("goodsmall-keys-{}-{}", std::process::id(), rand::random::<u32>()));
        let made = KeyPair::load_or_generate(&dir).unwrap();
        let mode = |file: &str| std::fs::metadata(dir.join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("jwt-ed25519.key"), 0o600, "the private key");
        assert_eq!(KeyPair::load_or_generate(&dir).unwrap().private_pem, made.private_pem, "kept across starts");
        std::fs::set_permissions(dir.join("jwt-ed25519.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeyPair::load_or_generate(&dir).unwrap_err().to_string();
        assert!(err.contains("jwt-ed25519.key") && err.contains("chmod 600"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
