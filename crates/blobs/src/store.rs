//! The blob store: `blobs/<id>.data` holds the bytes, `blobs/<id>.obao` the BLAKE3 tree's
//! hash pairs (a pre-order bao outboard down to 16 KiB chunk groups), and `blobs.redb` the
//! metadata, the verified groups of partial blobs, and the downloads to finish.
//!
//! Correctness: a partial blob's bitmap is committed only after its data and hash pairs are
//! synced, so after a crash every group the bitmap claims is on disk; at worst the last
//! second of verified groups is fetched again.
//!
//! Why this file is over 800 lines: every method of `Store` (add, write a range, sync,
//! serve, remove, resume) keeps that invariant between the data files, the outboards and
//! `blobs.redb`; it stays reviewable in one place. Range encoding, verification and
//! manifests, which do not touch it, live in their own files.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bao_tree::io::Parent;
use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::{OutboardMut, ReadAt, Size, WriteAt};
use bao_tree::{BaoTree, ChunkNum, ChunkRanges};
use peerchain_primitives::encode::{Reader, Sink, put_bytes, put_varint};
use peerchain_primitives::{ContentId, DecodeError, Encode};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tracing::{info, warn};

use crate::encode::encode_range;
use crate::manifest::{Manifest, ManifestFile};
use crate::verify::{VerifiedRange, verify_range};
use crate::{BLOCK_SIZE, Bitmap, GROUP_BYTES, MAX_REQUEST_GROUPS, group_count, keywords};

const ENTRIES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs_v1");
/// Verified chunk groups of partial blobs; a blob without a row here is complete.
const HAVE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blob_have_v1");
/// Downloads to finish, and where to put the result.
const WANTED: TableDefinition<&[u8; 32], &str> = TableDefinition::new("blob_wanted_v1");
/// The size and modification time of a complete blob's data file when the store last knew
/// every byte of it to be good (added, or downloaded and verified).
const STAMPS: TableDefinition<&[u8; 32], (u64, u64, u32)> = TableDefinition::new("blob_stamps_v1");

/// The largest blob the store accepts from a peer's claim (1 TiB).
pub const MAX_BLOB_SIZE: u64 = 1 << 40;
/// How often a download's verified groups are made durable.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// What a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file's bytes.
    File,
    /// A directory's manifest.
    Directory,
}

/// A blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its content id.
    pub id: ContentId,
    /// The file or directory name it was added or found under.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// File or directory manifest.
    pub kind: Kind,
    /// What searches find it by.
    pub keywords: Vec<String>,
    /// Chunk groups verified and on disk.
    pub verified_groups: u64,
}

impl Entry {
    /// Whether every byte is here.
    pub fn is_complete(&self) -> bool {
        self.verified_groups == group_count(self.size)
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the store could not be read or written.
    #[error("blob store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("blob store {path}: {reason}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The metadata of a blob does not decode: the store is damaged.
    #[error("blob store: the record of {id} is damaged: {source}")]
    Corrupt {
        /// The blob.
        id: ContentId,
        /// Why.
        source: DecodeError,
    },
    /// The blob is not in the store.
    #[error("no content {0} in the store")]
    NotFound(ContentId),
    /// A peer claims a size beyond what the store accepts.
    #[error("content {id} claims {size} bytes, over the limit of {MAX_BLOB_SIZE}")]
    TooLarge {
        /// The blob.
        id: ContentId,
        /// The claimed size.
        size: u64,
    },
    /// The blob is not complete yet.
    #[error("content {0} is not complete yet")]
    Incomplete(ContentId),
}

/// Why a file could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file changed size while it was read.
    #[error("{0} changed while it was being added; add it again")]
    Changed(PathBuf),
    /// Neither a file nor a directory.
    #[error("{0} is neither a regular file nor a directory")]
    NotAFile(PathBuf),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// Why a range could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No such blob.
    #[error("unknown content")]
    NotFound,
    /// The range is empty, too long, or past the end.
    #[error("range {start}..{end} out of bounds (blob has {groups} groups, at most {max} per request)", max = MAX_REQUEST_GROUPS)]
    OutOfBounds {
        /// First group asked.
        start: u64,
        /// End of the range asked.
        end: u64,
        /// Groups in the blob.
        groups: u64,
    },
    /// A partial holder does not have all of the range.
    #[error("range not held")]
    Missing,
    /// This node's own copy fails verification.
    #[error("the stored copy is damaged: {0}")]
    Damaged(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// What a peer's encoded range did to a partial blob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Groups of the range that are now verified on disk (before the first bad one).
    pub verified_groups: u64,
    /// Why the rest was refused: a hash mismatch or a short answer (the peer's fault).
    pub bad_data: Option<String>,
    /// Groups of the whole blob verified so far.
    pub blob_verified_groups: u64,
    /// Whether the blob is now complete.
    pub complete: bool,
}

/// Positioned reads and writes on a shared file handle.
#[derive(Clone, Copy)]
struct At<'a>(&'a File);

impl ReadAt for At<'_> {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        FileExt::read_at(self.0, buf, pos)
    }
}

impl WriteAt for At<'_> {
    fn write_at(&mut self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        FileExt::write_at(self.0, buf, pos)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Size for At<'_> {
    fn size(&self) -> io::Result<Option<u64>> {
        Ok(Some(self.0.metadata()?.len()))
    }
}

/// A blob being downloaded.
struct Partial {
    /// Its record, so that writes need no database read.
    entry: Entry,
    have: Bitmap,
    // Shared so that pieces are verified without holding the partial's lock.
    data: Arc<File>,
    outboard: Arc<File>,
    /// Held while a verified piece is written: concurrent writes to one file spin on its
    /// inode lock in the kernel, which a profile showed costing more than it saved.
    writing: Arc<Mutex<()>>,
    /// Held through a sync (flush, then record), so that records land in the order their
    /// bitmaps were taken. The partial's own lock is not held meanwhile: a flush of a
    /// second's worth of writes stalled every writer, and with them the download.
    syncing: Arc<Mutex<()>>,
    unsynced: u64,
    last_sync: Instant,
}

/// The blob store of one data directory. Cheap to share behind an `Arc`; every method
/// blocks on disk I/O.
pub struct Store {
    dir: PathBuf,
    db_path: PathBuf,
    db: redb::Database,
    partials: Mutex<HashMap<ContentId, Arc<Mutex<Partial>>>>,
    next_temp: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blobs::Store").field("dir", &self.dir).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; the store goes on.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A data file's size and modification time (seconds and nanoseconds since the epoch).
type Stamp = (u64, u64, u32);

fn stamp(metadata: &std::fs::Metadata) -> Option<Stamp> {
    let modified = metadata.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((metadata.len(), modified.as_secs(), modified.subsec_nanos()))
}

fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, BLOCK_SIZE)
}

pub(crate) fn chunk_ranges(size: u64, groups: Range<u64>) -> ChunkRanges {
    let chunks_per_group = GROUP_BYTES / 1024;
    let end = (groups.end * chunks_per_group).min(tree(size).chunks().0.max(1));
    ChunkRanges::from(ChunkNum(groups.start * chunks_per_group)..ChunkNum(end))
}

impl Encode for Entry {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        put_bytes(sink, self.name.as_bytes());
        self.size.encode_to(sink);
        sink.put(&[match self.kind {
            Kind::File => 0,
            Kind::Directory => 1,
        }]);
        put_varint(sink, self.keywords.len() as u64);
        for word in &self.keywords {
            put_bytes(sink, word.as_bytes());
        }
    }
}

fn decode_entry(id: ContentId, bytes: &[u8]) -> Result<Entry, DecodeError> {
    let mut reader = Reader::new(bytes);
    let text = |reader: &mut Reader<'_>, what| {
        std::str::from_utf8(reader.bytes(what, 4096)?).map(str::to_owned).map_err(|_| DecodeError::Invalid { what })
    };
    let name = text(&mut reader, "name")?;
    let size = reader.u64("size")?;
    let kind = match reader.u8("kind")? {
        0 => Kind::File,
        1 => Kind::Directory,
        tag => return Err(DecodeError::UnknownTag { what: "blob kind", tag }),
    };
    let count = reader.length("keywords", keywords::MAX_KEYWORDS)?;
    let keywords = (0..count).map(|_| text(&mut reader, "keyword")).collect::<Result<_, _>>()?;
    reader.finish()?;
    Ok(Entry { id, name, size, kind, keywords, verified_groups: group_count(size) })
}

impl Store {
    /// Opens (or creates) the store in `dir`, loading the state of partial downloads.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        let db_path = dir.join("blobs.redb");
        let database = |e: &dyn std::fmt::Display| Error::Database { path: db_path.clone(), reason: e.to_string() };
        let db = redb::Database::create(&db_path).map_err(|e| database(&e))?;
        let txn = db.begin_write().map_err(|e| database(&e))?;
        for table in [ENTRIES, HAVE] {
            txn.open_table(table).map_err(|e| database(&e))?;
        }
        txn.open_table(WANTED).map_err(|e| database(&e))?;
        txn.open_table(STAMPS).map_err(|e| database(&e))?;
        txn.commit().map_err(|e| database(&e))?;
        let store = Store {
            dir: dir.to_owned(),
            db_path: db_path.clone(),
            db,
            partials: Mutex::new(HashMap::new()),
            next_temp: std::sync::atomic::AtomicU64::new(0),
        };
        // Leftovers of adds that never finished.
        if let Ok(names) = std::fs::read_dir(dir) {
            for name in names.flatten() {
                if name.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(name.path());
                }
            }
        }
        let partial_ids: Vec<(ContentId, Vec<u8>)> = {
            let txn = store.db.begin_read().map_err(|e| database(&e))?;
            let table = txn.open_table(HAVE).map_err(|e| database(&e))?;
            let rows = table.iter().map_err(|e| database(&e))?;
            rows.map(|row| row.map(|(k, v)| (ContentId(*k.value()), v.value().to_vec())))
                .collect::<Result<_, _>>()
                .map_err(|e| database(&e))?
        };
        for (id, bits) in partial_ids {
            let entry = store.entry_record(id)?.ok_or(Error::NotFound(id))?;
            let have = Bitmap::from_bytes(group_count(entry.size), &bits)
                .map_err(|_| Error::Corrupt { id, source: DecodeError::Invalid { what: "verified groups" } })?;
            let partial = store.open_partial(entry, have)?;
            lock(&store.partials).insert(id, Arc::new(Mutex::new(partial)));
        }
        Ok(store)
    }

    fn database_error(&self, e: impl std::fmt::Display) -> Error {
        Error::Database { path: self.db_path.clone(), reason: e.to_string() }
    }

    fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_owned(), source }
    }

    fn data_path(&self, id: ContentId) -> PathBuf {
        self.dir.join(format!("{id}.data"))
    }

    fn outboard_path(&self, id: ContentId) -> PathBuf {
        self.dir.join(format!("{id}.obao"))
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.next_temp.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.join(format!("add-{}-{n}.tmp", std::process::id()))
    }

    fn open_partial(&self, entry: Entry, have: Bitmap) -> Result<Partial, Error> {
        let id = entry.id;
        let open = |path: PathBuf| {
            OpenOptions::new().read(true).write(true).open(&path).map_err(|source| Error::Io { path, source })
        };
        Ok(Partial {
            entry,
            have,
            data: Arc::new(open(self.data_path(id))?),
            outboard: Arc::new(open(self.outboard_path(id))?),
            writing: Arc::default(),
            syncing: Arc::default(),
            unsynced: 0,
            last_sync: Instant::now(),
        })
    }

    fn entry_in(&self, txn: &redb::ReadTransaction, id: ContentId) -> Result<Option<Entry>, Error> {
        let table = txn.open_table(ENTRIES).map_err(|e| self.database_error(e))?;
        let Some(bytes) = table.get(&id.0).map_err(|e| self.database_error(e))? else {
            return Ok(None);
        };
        decode_entry(id, bytes.value()).map(Some).map_err(|source| Error::Corrupt { id, source })
    }

    fn entry_record(&self, id: ContentId) -> Result<Option<Entry>, Error> {
        self.entry_in(&self.db.begin_read().map_err(|e| self.database_error(e))?, id)
    }

    /// A blob's record and, when it is complete, the stamp of its known-good data file.
    fn entry_and_stamp(&self, id: ContentId) -> Result<Option<(Entry, Option<Stamp>)>, Error> {
        let txn = self.db.begin_read().map_err(|e| self.database_error(e))?;
        let Some(entry) = self.entry_in(&txn, id)? else { return Ok(None) };
        let stamps = txn.open_table(STAMPS).map_err(|e| self.database_error(e))?;
        let stamp = stamps.get(&id.0).map_err(|e| self.database_error(e))?.map(|row| row.value());
        Ok(Some((entry, stamp)))
    }

    fn partial(&self, id: ContentId) -> Option<Arc<Mutex<Partial>>> {
        lock(&self.partials).get(&id).cloned()
    }

    /// A blob's entry, with how much of it is verified.
    pub fn get(&self, id: ContentId) -> Result<Option<Entry>, Error> {
        let Some(mut entry) = self.entry_record(id)? else { return Ok(None) };
        if let Some(partial) = self.partial(id) {
            entry.verified_groups = lock(&partial).have.count();
        }
        Ok(Some(entry))
    }

    /// Every blob, complete or partial.
    pub fn list(&self) -> Result<Vec<Entry>, Error> {
        let rows: Vec<(ContentId, Vec<u8>)> = {
            let txn = self.db.begin_read().map_err(|e| self.database_error(e))?;
            let table = txn.open_table(ENTRIES).map_err(|e| self.database_error(e))?;
            let rows = table.iter().map_err(|e| self.database_error(e))?;
            rows.map(|row| row.map(|(k, v)| (ContentId(*k.value()), v.value().to_vec())))
                .collect::<Result<_, _>>()
                .map_err(|e| self.database_error(e))?
        };
        let mut entries = Vec::with_capacity(rows.len());
        for (id, bytes) in rows {
            let mut entry = decode_entry(id, &bytes).map_err(|source| Error::Corrupt { id, source })?;
            if let Some(partial) = self.partial(id) {
                entry.verified_groups = lock(&partial).have.count();
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Which chunk groups of a blob are verified: `None` for an unknown blob.
    pub fn have(&self, id: ContentId) -> Result<Option<Bitmap>, Error> {
        let Some(entry) = self.entry_record(id)? else { return Ok(None) };
        Ok(Some(match self.partial(id) {
            Some(partial) => lock(&partial).have.clone(),
            None => Bitmap::full(group_count(entry.size)),
        }))
    }

    /// Complete entries whose keywords hold every word of `query`, at most `limit`.
    pub fn search(&self, query: &[String], limit: usize) -> Result<Vec<Entry>, Error> {
        let mut found: Vec<Entry> =
            self.list()?.into_iter().filter(|e| e.is_complete() && keywords::matches(&e.keywords, query)).collect();
        found.truncate(limit);
        Ok(found)
    }

    /// Adds a file or a directory (each of its files, then its manifest), streaming: the
    /// bytes are hashed while they are copied in. Content already here is stored once.
    pub fn add_path(&self, path: &Path, tags: &[String]) -> Result<Entry, AddError> {
        self.add_tree(path, tags).map(|(entry, _)| entry)
    }

    /// [`Store::add_path`], also returning the entries of a directory's files, each of which
    /// is shared on its own too.
    pub fn add_tree(&self, path: &Path, tags: &[String]) -> Result<(Entry, Vec<Entry>), AddError> {
        let metadata = std::fs::metadata(path).map_err(|source| AddError::Read { path: path.to_owned(), source })?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "content".into());
        if metadata.is_file() {
            let file = File::open(path).map_err(|source| AddError::Read { path: path.to_owned(), source })?;
            return Ok((self.add_reader(file, metadata.len(), path, name, Kind::File, tags)?, Vec::new()));
        }
        if !metadata.is_dir() {
            return Err(AddError::NotAFile(path.to_owned()));
        }
        let mut files = Vec::new();
        collect_files(path, path, &mut files)?;
        let mut manifest = Manifest::default();
        let mut children = Vec::with_capacity(files.len());
        for (relative, file_path) in files {
            let entry = self.add_path(&file_path, &[])?;
            manifest.files.push(ManifestFile { path: relative, id: entry.id, size: entry.size });
            children.push(entry);
        }
        manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
        let bytes = manifest.to_bytes();
        let entry = self.add_reader(&bytes[..], bytes.len() as u64, path, name, Kind::Directory, tags)?;
        Ok((entry, children))
    }

    fn add_reader(
        &self,
        reader: impl Read,
        size: u64,
        source_path: &Path,
        name: String,
        kind: Kind,
        tags: &[String],
    ) -> Result<Entry, AddError> {
        let data_temp = self.temp_path();
        let outboard_temp = self.temp_path();
        let result = self.hash_into(reader, size, source_path, &data_temp, &outboard_temp);
        let id = match result {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_file(&data_temp);
                let _ = std::fs::remove_file(&outboard_temp);
                return Err(e);
            }
        };
        let keywords = keywords::keywords(&name, tags);
        let entry = Entry { id, name, size, kind, keywords, verified_groups: group_count(size) };
        // Correctness: the same content added twice is stored once; a partial copy of it is
        // replaced by the complete one.
        if let Some(existing) = self.get(id)?
            && existing.is_complete()
        {
            let _ = std::fs::remove_file(&data_temp);
            let _ = std::fs::remove_file(&outboard_temp);
            return Ok(existing);
        }
        lock(&self.partials).remove(&id);
        let data_path = self.data_path(id);
        let outboard_path = self.outboard_path(id);
        std::fs::rename(&data_temp, &data_path).map_err(Self::io_error(&data_path))?;
        std::fs::rename(&outboard_temp, &outboard_path).map_err(Self::io_error(&outboard_path))?;
        self.write_entry(&entry, None)?;
        info!(%id, name = %entry.name, size, "content added");
        Ok(entry)
    }

    /// Copies `reader` into `data_temp` while computing the outboard into `outboard_temp`;
    /// returns the content id. Both files are synced.
    fn hash_into(
        &self,
        reader: impl Read,
        size: u64,
        source_path: &Path,
        data_temp: &Path,
        outboard_temp: &Path,
    ) -> Result<ContentId, AddError> {
        let create = |path: &Path| {
            OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(Self::io_error(path))
        };
        let data_file = create(data_temp)?;
        let outboard_file = create(outboard_temp)?;
        let tree = tree(size);
        outboard_file.set_len(tree.outboard_size()).map_err(Self::io_error(outboard_temp))?;
        let read_error = |source| AddError::Read { path: source_path.to_owned(), source };
        let mut tee = Tee { reader, copy: std::io::BufWriter::with_capacity(1 << 20, &data_file) };
        let mut outboard = PreOrderOutboard { root: blake3::hash(&[]), tree, data: At(&outboard_file) };
        let root = bao_tree::io::sync::outboard(&mut tee, tree, &mut outboard).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                AddError::Changed(source_path.to_owned())
            } else {
                read_error(e)
            }
        })?;
        // The file must end where its size said.
        let mut probe = [0u8; 1];
        if tee.reader.read(&mut probe).map_err(read_error)? != 0 {
            return Err(AddError::Changed(source_path.to_owned()));
        }
        std::io::Write::flush(&mut tee.copy).map_err(Self::io_error(data_temp))?;
        drop(tee);
        data_file.sync_data().map_err(Self::io_error(data_temp))?;
        outboard_file.sync_data().map_err(Self::io_error(outboard_temp))?;
        Ok(ContentId(*root.as_bytes()))
    }

    fn write_entry(&self, entry: &Entry, have: Option<&Bitmap>) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(|e| self.database_error(e))?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(|e| self.database_error(e))?;
            entries.insert(&entry.id.0, entry.to_bytes().as_slice()).map_err(|e| self.database_error(e))?;
            let mut haves = txn.open_table(HAVE).map_err(|e| self.database_error(e))?;
            match have {
                Some(have) => haves.insert(&entry.id.0, have.to_bytes().as_slice()).map(drop),
                None => haves.remove(&entry.id.0).map(drop),
            }
            .map_err(|e| self.database_error(e))?;
            let mut stamps = txn.open_table(STAMPS).map_err(|e| self.database_error(e))?;
            let data_path = self.data_path(entry.id);
            let stamp = match have {
                Some(_) => None,
                None => stamp(&std::fs::metadata(&data_path).map_err(Self::io_error(&data_path))?),
            };
            match stamp {
                Some(stamp) => stamps.insert(&entry.id.0, stamp).map(drop),
                None => stamps.remove(&entry.id.0).map(drop),
            }
            .map_err(|e| self.database_error(e))?;
        }
        txn.commit().map_err(|e| self.database_error(e))
    }

    /// Starts a partial blob for a download (sparse files of the full size), unless the blob
    /// is here already. The size must have been proven with [`Store::check_range`] on the
    /// last chunk group.
    pub fn begin(&self, id: ContentId, size: u64, name: &str, kind: Kind) -> Result<Entry, Error> {
        if let Some(entry) = self.get(id)? {
            return Ok(entry);
        }
        if size > MAX_BLOB_SIZE {
            return Err(Error::TooLarge { id, size });
        }
        let tree = tree(size);
        let data_path = self.data_path(id);
        let outboard_path = self.outboard_path(id);
        for (path, len) in [(&data_path, size), (&outboard_path, tree.outboard_size())] {
            let file =
                OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(Self::io_error(path))?;
            file.set_len(len).map_err(Self::io_error(path))?;
        }
        let have = Bitmap::new(group_count(size));
        let keywords = keywords::keywords(name, &[]);
        let entry = Entry { id, name: name.to_owned(), size, kind, keywords, verified_groups: 0 };
        self.write_entry(&entry, Some(&have))?;
        let partial = self.open_partial(entry.clone(), have)?;
        lock(&self.partials).insert(id, Arc::new(Mutex::new(partial)));
        Ok(entry)
    }

    /// Encodes chunk groups `groups` of a blob with the hash pairs that prove them.
    ///
    /// The stored copy is checked on the way unless it is a complete blob whose data file
    /// has the size and modification time it had when the store last knew it good (as rsync
    /// and Syncthing detect changes): re-hashing every upload would cost as much CPU as the
    /// downloader's own verification, which catches what this shortcut lets through.
    pub fn read_range(&self, id: ContentId, groups: Range<u64>) -> Result<Vec<u8>, ReadError> {
        let (entry, known_good) = self.entry_and_stamp(id)?.ok_or(ReadError::NotFound)?;
        let group_total = group_count(entry.size);
        if groups.is_empty() || groups.end > group_total || groups.end - groups.start > MAX_REQUEST_GROUPS {
            return Err(ReadError::OutOfBounds { start: groups.start, end: groups.end, groups: group_total });
        }
        if let Some(partial) = self.partial(id)
            && !lock(&partial).have.all(groups.clone())
        {
            return Err(ReadError::Missing);
        }
        let open = |path: PathBuf| File::open(&path).map_err(|source| Error::Io { path, source });
        let data = open(self.data_path(id))?;
        let outboard_file = open(self.outboard_path(id))?;
        let root = blake3::Hash::from_bytes(id.0);
        let outboard = PreOrderOutboard { root, tree: tree(entry.size), data: At(&outboard_file) };
        let mut encoded = Vec::with_capacity(crate::max_encoded_len(groups.end - groups.start));
        let ranges = chunk_ranges(entry.size, groups);
        let damaged = |why: String| {
            warn!(%id, error = %why, "stored content fails verification");
            ReadError::Damaged(why)
        };
        encode_range(&At(&data), &outboard, &ranges, &mut encoded).map_err(|e| damaged(e.to_string()))?;
        // A data file changed since the store last knew it good is checked before it is served.
        let unchanged =
            known_good.is_some() && known_good == stamp(&data.metadata().map_err(Self::io_error(&self.data_path(id)))?);
        if !unchanged && let Some(fault) = verify_range(root, outboard.tree, &ranges, &encoded).fault {
            return Err(damaged(fault.to_string()));
        }
        Ok(encoded)
    }

    /// Checks an encoded range against content id `id` of `size` bytes without storing it:
    /// a range that ends at the last chunk group proves the size.
    pub fn check_range(id: ContentId, size: u64, groups: Range<u64>, encoded: &[u8]) -> Result<(), String> {
        let ranges = chunk_ranges(size, groups);
        match verify_range(blake3::Hash::from_bytes(id.0), tree(size), &ranges, encoded).fault {
            Some(fault) => Err(fault.to_string()),
            None => Ok(()),
        }
    }

    /// Verifies a peer's encoding of chunk groups `groups` and writes every group that
    /// verifies, up to the first that does not.
    ///
    /// Several ranges of one blob may be written at once from different threads: they are
    /// verified in parallel, outside the blob's lock, which only guards the bitmap, and
    /// written one at a time. A group is marked verified only after its bytes and hash
    /// pairs are written.
    pub fn write_range(&self, id: ContentId, groups: Range<u64>, encoded: &[u8]) -> Result<WriteOutcome, Error> {
        let Some(partial) = self.partial(id) else {
            let entry = self.entry_record(id)?.ok_or(Error::NotFound(id))?;
            let groups = group_count(entry.size);
            return Ok(WriteOutcome { blob_verified_groups: groups, complete: true, ..WriteOutcome::default() });
        };
        let (entry, data, outboard_file, writing) = {
            let partial = lock(&partial);
            (partial.entry.clone(), partial.data.clone(), partial.outboard.clone(), partial.writing.clone())
        };
        let data_path = self.data_path(id);
        let ranges = chunk_ranges(entry.size, groups.clone());
        let mut outcome = WriteOutcome::default();
        let mut outboard =
            PreOrderOutboard { root: blake3::Hash::from_bytes(id.0), tree: tree(entry.size), data: At(&outboard_file) };
        // What verified before a fault is kept; the fault gets the peer dropped.
        let VerifiedRange { parents, leaves, fault } = verify_range(outboard.root, outboard.tree, &ranges, encoded);
        outcome.bad_data = fault.map(|e| e.to_string());
        {
            let _writing = lock(&writing);
            for Parent { node, pair } in parents {
                outboard.save(node, &pair).map_err(Self::io_error(&self.outboard_path(id)))?;
            }
            for (offset, bytes) in &leaves {
                data.write_all_at(bytes, *offset).map_err(Self::io_error(&data_path))?;
            }
        }
        outcome.verified_groups = leaves.len() as u64;
        let sync_due = {
            let mut state = lock(&partial);
            if state.have.is_full() {
                // Another write completed the blob meanwhile (the endgame asks twice).
                let blob_verified_groups = state.have.count();
                return Ok(WriteOutcome { blob_verified_groups, complete: true, ..outcome });
            }
            for group in leaves.iter().map(|(offset, _)| offset / GROUP_BYTES) {
                if state.have.set(group) {
                    state.unsynced += 1;
                }
            }
            outcome.blob_verified_groups = state.have.count();
            outcome.complete = state.have.is_full();
            // One writer starts the periodic sync; the others carry on writing.
            let due = outcome.complete || state.last_sync.elapsed() >= SYNC_INTERVAL;
            if due {
                state.last_sync = Instant::now();
            }
            due
        };
        if sync_due {
            self.sync_partial(&partial)?;
        }
        if outcome.complete {
            lock(&self.partials).remove(&id);
            info!(%id, name = %entry.name, size = entry.size, "content complete");
        }
        Ok(outcome)
    }

    /// Makes the groups verified so far durable: the bitmap is taken first, and every group
    /// in it was written before, so the flush that follows covers them all. Groups written
    /// meanwhile wait for the next sync.
    fn sync_partial(&self, partial: &Arc<Mutex<Partial>>) -> Result<(), Error> {
        let (id, syncing) = {
            let state = lock(partial);
            (state.entry.id, state.syncing.clone())
        };
        let _in_order = lock(&syncing);
        // A blob removed meanwhile stays removed (`remove` waits for a sync under way).
        if !self.partial(id).is_some_and(|current| Arc::ptr_eq(&current, partial)) {
            return Ok(());
        }
        let (entry, have, data, outboard) = {
            let mut state = lock(partial);
            if state.unsynced == 0 && !state.have.is_full() {
                return Ok(());
            }
            state.unsynced = 0;
            let have = (!state.have.is_full()).then(|| state.have.clone());
            (state.entry.clone(), have, state.data.clone(), state.outboard.clone())
        };
        data.sync_data().map_err(Self::io_error(&self.data_path(entry.id)))?;
        outboard.sync_data().map_err(Self::io_error(&self.outboard_path(entry.id)))?;
        self.write_entry(&entry, have.as_ref())
    }

    /// Makes every partial blob's verified groups durable (at shutdown).
    pub fn sync_all(&self) -> Result<(), Error> {
        let partials: Vec<Arc<Mutex<Partial>>> = lock(&self.partials).values().cloned().collect();
        for partial in partials {
            self.sync_partial(&partial)?;
        }
        Ok(())
    }

    /// Removes a blob and its files; returns whether it was here.
    pub fn remove(&self, id: ContentId) -> Result<bool, Error> {
        let partial = lock(&self.partials).remove(&id);
        // A sync under way finishes first, so that it cannot write the record back after
        // this removes it; later ones see the blob gone.
        let syncing = partial.map(|partial| lock(&partial).syncing.clone());
        let _no_sync = syncing.as_ref().map(|syncing| lock(syncing));
        let txn = self.db.begin_write().map_err(|e| self.database_error(e))?;
        let existed = {
            let mut entries = txn.open_table(ENTRIES).map_err(|e| self.database_error(e))?;
            let existed = entries.remove(&id.0).map_err(|e| self.database_error(e))?.is_some();
            txn.open_table(HAVE)
                .and_then(|mut t| t.remove(&id.0).map(drop).map_err(Into::into))
                .map_err(|e| self.database_error(e))?;
            txn.open_table(WANTED)
                .and_then(|mut t| t.remove(&id.0).map(drop).map_err(Into::into))
                .map_err(|e| self.database_error(e))?;
            txn.open_table(STAMPS)
                .and_then(|mut t| t.remove(&id.0).map(drop).map_err(Into::into))
                .map_err(|e| self.database_error(e))?;
            existed
        };
        txn.commit().map_err(|e| self.database_error(e))?;
        for path in [self.data_path(id), self.outboard_path(id)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
        Ok(existed)
    }

    /// Reads a complete blob whole (a directory manifest; callers bound the size).
    pub fn read_all(&self, id: ContentId) -> Result<Vec<u8>, Error> {
        let entry = self.get(id)?.ok_or(Error::NotFound(id))?;
        if !entry.is_complete() {
            return Err(Error::Incomplete(id));
        }
        let path = self.data_path(id);
        std::fs::read(&path).map_err(Self::io_error(&path))
    }

    /// Puts a complete blob's bytes at `to` (through a temporary name, so that `to` appears
    /// only whole): a hard link to the store's copy when both are on one filesystem, so a
    /// download takes its size on disk once, else a copy. Editing the result in place
    /// therefore changes the store's copy, which is then refused to peers (it no longer
    /// verifies) until it is removed or added again.
    pub fn export(&self, id: ContentId, to: &Path) -> Result<(), Error> {
        let entry = self.get(id)?.ok_or(Error::NotFound(id))?;
        if !entry.is_complete() {
            return Err(Error::Incomplete(id));
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(Self::io_error(parent))?;
        }
        let mut temp = to.as_os_str().to_owned();
        temp.push(".part");
        let temp = PathBuf::from(temp);
        let _ = std::fs::remove_file(&temp);
        if std::fs::hard_link(self.data_path(id), &temp).is_err() {
            std::fs::copy(self.data_path(id), &temp).map_err(Self::io_error(&temp))?;
        }
        std::fs::rename(&temp, to).map_err(Self::io_error(to))
    }

    /// Records a download to finish (resumed after a restart) and where it goes.
    pub fn want(&self, id: ContentId, output: &Path) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(|e| self.database_error(e))?;
        txn.open_table(WANTED)
            .and_then(|mut t| t.insert(&id.0, output.to_string_lossy().as_ref()).map(drop).map_err(Into::into))
            .map_err(|e| self.database_error(e))?;
        txn.commit().map_err(|e| self.database_error(e))
    }

    /// Forgets a download (done, or cancelled).
    pub fn unwant(&self, id: ContentId) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(|e| self.database_error(e))?;
        txn.open_table(WANTED)
            .and_then(|mut t| t.remove(&id.0).map(drop).map_err(Into::into))
            .map_err(|e| self.database_error(e))?;
        txn.commit().map_err(|e| self.database_error(e))
    }

    /// Downloads to finish, and where each goes.
    pub fn wanted(&self) -> Result<Vec<(ContentId, PathBuf)>, Error> {
        let txn = self.db.begin_read().map_err(|e| self.database_error(e))?;
        let table = txn.open_table(WANTED).map_err(|e| self.database_error(e))?;
        let rows = table.iter().map_err(|e| self.database_error(e))?;
        rows.map(|row| row.map(|(k, v)| (ContentId(*k.value()), PathBuf::from(v.value()))))
            .collect::<Result<_, _>>()
            .map_err(|e| self.database_error(e))
    }
}

/// A reader that copies what it reads into a writer.
struct Tee<R, W> {
    reader: R,
    copy: W,
}

impl<R: Read, W: std::io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The regular files under `dir`, with their `/`-separated paths relative to `root`.
/// Symbolic links are skipped: a shared folder must not reach outside itself.
fn collect_files(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<(), AddError> {
    let read_error = |source| AddError::Read { path: dir.to_owned(), source };
    let mut children: Vec<_> =
        std::fs::read_dir(dir).map_err(read_error)?.collect::<Result<_, _>>().map_err(read_error)?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let file_type = child.file_type().map_err(read_error)?;
        let path = child.path();
        if file_type.is_dir() {
            collect_files(root, &path, files)?;
        } else if file_type.is_file() {
            let relative = path.strip_prefix(root).expect("a child of the root");
            let parts: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            files.push((parts.join("/"), path));
        }
        if files.len() > crate::manifest::MAX_FILES {
            return Err(AddError::Read { path: root.to_owned(), source: io::Error::other("too many files") });
        }
    }
    Ok(())
}
