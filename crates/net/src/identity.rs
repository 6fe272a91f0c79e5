//! The node's identity key, kept in its data directory so that its peer id survives restarts.

use libp2p::identity::{self, Keypair};

/// Reads or creates the node's identity key at `path` (32 secret bytes, owner-only), so that
/// its peer id stays the same across restarts.
pub fn load_or_create_keypair(path: &std::path::Path) -> std::io::Result<Keypair> {
    match std::fs::read(path) {
        Ok(mut bytes) => identity::Keypair::ed25519_from_bytes(&mut bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = identity::Keypair::generate_ed25519();
            let secret = keypair.clone().try_into_ed25519().map_err(|e| std::io::Error::other(e.to_string()))?.secret();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(&mut options.open(path)?, secret.as_ref())?;
            Ok(keypair)
        }
        Err(e) => Err(e),
    }
}
