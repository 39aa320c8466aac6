//! The vault key: `AWOOOI_VAULT_KEY` (64 hex characters), else a key file in the data
//! directory, created with mode 0600 on first start. Replicas must share one key (use the
//! environment variable in production).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use engine::shield::VaultKey;

pub const KEY_FILE: &str = "vault.key";

pub fn load_or_create(data_dir: &Path, from_env: Option<String>) -> anyhow::Result<VaultKey> {
    if let Some(text) = from_env.filter(|t| !t.trim().is_empty()) {
        return VaultKey::from_hex(&text).context("AWOOOI_VAULT_KEY");
    }
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read vault key {}", path.display()))?;
        return VaultKey::from_hex(&text).with_context(|| format!("vault key {}", path.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let text = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create vault key {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "created a new vault key; back it up with the database");
    VaultKey::from_hex(&text).context("generated vault key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("awoooi-key-{}", rand::random::<u64>()));
        let first = load_or_create(&dir, None).unwrap();
        let second = load_or_create(&dir, None).unwrap();
        assert_eq!(first.digest("t", "v"), second.digest("t", "v"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let from_env = load_or_create(&dir, Some("11".repeat(32))).unwrap();
        assert_ne!(from_env.digest("t", "v"), first.digest("t", "v"));
        let bad = load_or_create(&dir, Some("nope".into())).unwrap_err();
        assert!(format!("{bad:#}").contains("AWOOOI_VAULT_KEY"), "{bad:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
