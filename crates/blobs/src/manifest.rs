//! A directory shared as one id: a manifest blob listing each file's relative path, content
//! id and size. Fetching the directory fetches the manifest, then every file it names.

use peerchain_primitives::encode::{Reader, Sink, put_bytes, put_varint};
use peerchain_primitives::{ContentId, Decode, DecodeError, Encode};

/// The most files in one shared directory.
pub const MAX_FILES: usize = 100_000;
/// The longest relative path.
pub const MAX_PATH_BYTES: usize = 4096;

/// One file of a shared directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Its path under the directory, `/`-separated, never leaving the directory.
    pub path: String,
    /// Its content.
    pub id: ContentId,
    /// Its size in bytes.
    pub size: u64,
}

/// The files of a shared directory, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The files.
    pub files: Vec<ManifestFile>,
}

/// Whether `path` is a relative path that stays inside its directory.
// Security: a manifest comes from a peer; a path with `..`, a root or a drive must never
// make a download write outside the folder the user chose.
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH_BYTES
        && !path.contains(['\\', '\0', ':'])
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Encode for Manifest {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(b"peerchain-dir/1");
        put_varint(sink, self.files.len() as u64);
        for file in &self.files {
            put_bytes(sink, file.path.as_bytes());
            file.id.encode_to(sink);
            file.size.encode_to(sink);
        }
    }
}

impl Decode for Manifest {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if reader.take(15, "manifest magic")? != b"peerchain-dir/1" {
            return Err(DecodeError::Invalid { what: "manifest magic" });
        }
        let count = reader.length("manifest files", MAX_FILES)?;
        let mut files: Vec<ManifestFile> = Vec::with_capacity(count);
        for _ in 0..count {
            let path = std::str::from_utf8(reader.bytes("manifest path", MAX_PATH_BYTES)?)
                .map_err(|_| DecodeError::Invalid { what: "manifest path" })?
                .to_owned();
            // Sorted and unique: one encoding per directory, no file written twice.
            if !is_safe_relative_path(&path) || files.last().is_some_and(|last| last.path >= path) {
                return Err(DecodeError::Invalid { what: "manifest path" });
            }
            files.push(ManifestFile { path, id: ContentId::decode(reader)?, size: reader.u64("file size")? });
        }
        Ok(Manifest { files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_manifest_decoder(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut bytes = b"peerchain-dir/1".to_vec();
            bytes.extend(tail);
            if let Ok(manifest) = Manifest::from_bytes(&bytes) {
                prop_assert!(manifest.files.iter().all(|f| is_safe_relative_path(&f.path)));
                prop_assert_eq!(manifest.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn manifests_round_trip_and_unsafe_paths_are_refused() {
        let file = |path: &str| ManifestFile { path: path.into(), id: ContentId([7; 32]), size: 3 };
        let manifest = Manifest { files: vec![file("a.txt"), file("sub/b.txt")] };
        assert_eq!(Manifest::from_bytes(&manifest.to_bytes()), Ok(manifest));
        for bad in ["../etc/passwd", "/abs", "a//b", "./a", "c:\\x", ""] {
            let manifest = Manifest { files: vec![file(bad)] };
            assert!(Manifest::from_bytes(&manifest.to_bytes()).is_err(), "{bad}");
        }
        let unsorted = Manifest { files: vec![file("b"), file("a")] };
        assert!(Manifest::from_bytes(&unsorted.to_bytes()).is_err());
    }
}
