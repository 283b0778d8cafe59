//! Ed25519 key material in the PEM forms `openssl genpkey -algorithm ed25519` writes.

use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair as _},
};
use serde::Deserialize;

use crate::configuration::ConfigError;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// PKCS#8 PEM private key; only the user service (the signer) has it.
    pub private_key_pem: Option<String>,
    /// SPKI PEM public key; every service verifies tokens with it.
    pub public_key_pem: Option<String>,
    pub issuer: Option<String>,
}

impl KeySettings {
    pub fn issuer(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| "goodsmall".into())
    }

    pub fn public_key(&self, key: &str) -> Result<String, ConfigError> {
        let pem = self
            .public_key_pem
            .clone()
            .ok_or_else(|| ConfigError::invalid(&format!("{key}.public_key_pem"), "is required (create a pair with `goodsmall-user keygen`)"))?;
        jsonwebtoken::DecodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|e| ConfigError::invalid(&format!("{key}.public_key_pem"), format!("is not an Ed25519 public key PEM: {e}")))?;
        Ok(pem)
    }

    pub fn private_key(&self, key: &str) -> Result<String, ConfigError> {
        let pem = self
            .private_key_pem
            .clone()
            .ok_or_else(|| ConfigError::invalid(&format!("{key}.private_key_pem"), "is required (create a pair with `goodsmall-user keygen`)"))?;
        jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|e| ConfigError::invalid(&format!("{key}.private_key_pem"), format!("is not an Ed25519 PKCS#8 PEM: {e}")))?;
        Ok(pem)
    }
}

/// A signing key pair as PEM text.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

impl KeyPair {
    pub fn generate() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("system randomness");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("freshly generated key");
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        Self { private_pem: pem("PRIVATE KEY", pkcs8.as_ref()), public_pem: pem("PUBLIC KEY", &spki) }
    }

    /// The one-process default keeps its pair in the data folder so that tokens
    /// survive a restart of the shop.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let (private, public) = (dir.join("jwt-ed25519.key"), dir.join("jwt-ed25519.pub"));
        if private.exists() && public.exists() {
            return Ok(Self { private_pem: std::fs::read_to_string(private)?, public_pem: std::fs::read_to_string(public)? });
        }
        std::fs::create_dir_all(dir)?;
        let pair = Self::generate();
        std::fs::write(private, &pair.private_pem)?;
        std::fs::write(public, &pair.public_pem)?;
        Ok(pair)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}
