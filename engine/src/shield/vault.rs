//! Sealing a [`Pseudonyms`] map for storage: AES-256-GCM, bound to the incident it belongs to.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::Pseudonyms;

const NONCE_LEN: usize = 12;

/// The 256-bit vault key. Never printed; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct VaultKey([u8; 32]);

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("vault key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error("vault cannot be opened: wrong key, wrong incident, or corrupted data")]
    CannotOpen,
}

impl VaultKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        VaultKey(bytes)
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        let bytes = hex::decode(text.trim()).map_err(|_| VaultError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| VaultError::BadKey)?;
        Ok(VaultKey(bytes))
    }

    /// A keyed, one-way digest of `value` for equality lookups (e.g. "same service") without
    /// storing the value. Different `purpose`s give unrelated digests.
    pub fn digest(&self, purpose: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Encrypts `plaintext` (AES-256-GCM, a random nonce); `context` must be given again to
    /// open it, so a sealed value cannot be moved to another row.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of a bounded buffer");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`VaultKey::seal`] made with the same key and context.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::CannotOpen);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::CannotOpen)
    }
}

#[derive(Deserialize)]
struct Entry {
    l: String,
    k: String,
    v: String,
}

/// An entry as written: borrowed from the map, one allocation (the label) each.
#[derive(Serialize)]
struct EntryRef<'a> {
    l: String,
    k: &'a str,
    v: &'a str,
}

fn seal_entries<'a>(
    entries: impl Iterator<Item = (String, &'a str, &'a str)>,
    key: &VaultKey,
    context: &[u8],
) -> Vec<u8> {
    let entries: Vec<EntryRef<'a>> = entries.map(|(l, k, v)| EntryRef { l, k, v }).collect();
    let plaintext = serde_json::to_vec(&entries).expect("entries serialise");
    key.seal(&plaintext, context)
}

impl Pseudonyms {
    /// Encrypts the map; `context` (the incident id) must be given again to open it.
    pub fn seal(&self, key: &VaultKey, context: &[u8]) -> Vec<u8> {
        seal_entries(self.entries(), key, context)
    }

    /// Encrypts only the values labelled after `mark`: a segment, which
    /// [`Pseudonyms::open_into`] adds to the map it was cut from (as sealed up to `mark`).
    /// Storing a growing map segment by segment costs what was added, not the whole map.
    pub fn seal_since(&self, mark: super::Mark, key: &VaultKey, context: &[u8]) -> Vec<u8> {
        seal_entries(self.entries_since(mark), key, context)
    }

    /// Decrypts a map sealed with the same key and context.
    pub fn open(sealed: &[u8], key: &VaultKey, context: &[u8]) -> Result<Pseudonyms, VaultError> {
        let mut names = Pseudonyms::new();
        names.open_into(sealed, key, context)?;
        Ok(names)
    }

    /// Decrypts a map or a segment sealed with the same key and context and adds its entries
    /// to this map, keeping their labels. Nothing is added when it cannot be opened.
    pub fn open_into(
        &mut self,
        sealed: &[u8],
        key: &VaultKey,
        context: &[u8],
    ) -> Result<(), VaultError> {
        let plaintext = key.open(sealed, context)?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&plaintext).map_err(|_| VaultError::CannotOpen)?;
        for e in entries {
            self.restore(e.l, e.k, e.v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shield::Shield;

    fn key(byte: u8) -> VaultKey {
        VaultKey::from_bytes([byte; 32])
    }

    #[test]
    fn sealed_vaults_reopen_only_with_the_same_key_and_incident() {
        let shield = Shield::builtin();
        let mut names = Pseudonyms::new();
        let redacted = shield.redact("10.0.0.1 mailed bob@example.com", &mut names);
        let sealed = names.seal(&key(7), b"incident-1");
        let raw = String::from_utf8_lossy(&sealed);
        assert!(!raw.contains("10.0.0.1") && !raw.contains("bob@example.com"));

        let mut reopened = Pseudonyms::open(&sealed, &key(7), b"incident-1").unwrap();
        assert_eq!(reopened, names);
        // Numbering continues where it left off.
        assert_eq!(
            shield.redact("10.0.0.2 and 10.0.0.1", &mut reopened),
            "[IP_2] and [IP_1]"
        );
        assert_eq!(
            reopened.rehydrate(&redacted),
            "10.0.0.1 mailed bob@example.com"
        );

        assert_eq!(
            Pseudonyms::open(&sealed, &key(8), b"incident-1"),
            Err(VaultError::CannotOpen)
        );
        assert_eq!(
            Pseudonyms::open(&sealed, &key(7), b"incident-2"),
            Err(VaultError::CannotOpen)
        );
        assert_eq!(
            Pseudonyms::open(&sealed[..5], &key(7), b"incident-1"),
            Err(VaultError::CannotOpen)
        );
    }

    /// A map stored as a base and segments opens to the same map, and numbering goes on.
    #[test]
    fn segments_sealed_since_a_mark_add_up_to_the_map() {
        let shield = Shield::builtin();
        let mut names = Pseudonyms::new();
        shield.redact("10.0.0.1 mailed bob@example.com", &mut names);
        let base = names.seal(&key(7), b"base");
        let mark = names.mark();
        // A repeat adds nothing; two new values do.
        shield.redact("10.0.0.1 then 10.0.0.2 and eve@example.com", &mut names);
        let segment = names.seal_since(mark, &key(7), b"segment-1");
        let raw = String::from_utf8_lossy(&segment);
        assert!(!raw.contains("10.0.0.2") && !raw.contains("eve@example.com"));
        let empty = names.seal_since(names.mark(), &key(7), b"segment-2");

        let mut reopened = Pseudonyms::open(&base, &key(7), b"base").unwrap();
        assert_eq!(reopened.len(), 2);
        reopened.open_into(&segment, &key(7), b"segment-1").unwrap();
        reopened.open_into(&empty, &key(7), b"segment-2").unwrap();
        assert_eq!(reopened, names);
        assert_eq!(
            shield.redact("10.0.0.3, 10.0.0.2, eve@example.com", &mut reopened),
            "[IP_3], [IP_2], [EMAIL_2]"
        );
        // A segment opens only under its own context, and a failed one adds nothing.
        let before = reopened.len();
        assert_eq!(
            reopened.open_into(&segment, &key(7), b"segment-2"),
            Err(VaultError::CannotOpen)
        );
        assert_eq!(reopened.len(), before);
    }

    #[test]
    fn keys_parse_from_hex_and_never_print() {
        let k = VaultKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{k:?}"), "VaultKey(<redacted>)");
        assert_eq!(VaultKey::from_hex("abc").unwrap_err(), VaultError::BadKey);
        assert_eq!(
            VaultKey::from_hex(&"zz".repeat(32)).unwrap_err(),
            VaultError::BadKey
        );
        assert_eq!(
            k.digest("service", "frontend"),
            k.digest("service", "frontend")
        );
        assert_ne!(
            k.digest("service", "frontend"),
            k.digest("alert", "frontend")
        );
        assert_ne!(
            k.digest("service", "frontend"),
            key(1).digest("service", "frontend")
        );
    }
}
