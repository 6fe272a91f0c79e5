//! The blob store on real files: add, serve ranges, verify a peer's ranges into a partial
//! blob, survive a reopen, refuse bad data and bad requests.

use peerchain_testing::pseudo_random;
use std::path::Path;

use peerchain_blobs::manifest::Manifest;
use peerchain_blobs::{GROUP_BYTES, Kind, ReadError, Store, content_id, group_count, piece_count, piece_groups};
use peerchain_primitives::Decode;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Copies every piece from `from` into `to` through the wire encoding.
fn transfer(from: &Store, to: &Store, id: peerchain_primitives::ContentId, size: u64) {
    for piece in (0..piece_count(size)).rev() {
        let groups = piece_groups(size, piece);
        let encoded = from.read_range(id, groups.clone()).unwrap();
        let outcome = to.write_range(id, groups.clone(), &encoded).unwrap();
        assert_eq!(outcome.bad_data, None);
        assert_eq!(outcome.verified_groups, groups.end - groups.start);
    }
}

#[test]
fn added_content_is_addressed_by_its_blake3_root_and_stored_once() {
    let temp = tempfile::tempdir().unwrap();
    let store = Store::open(&temp.path().join("blobs")).unwrap();
    for size in [0usize, 1, 1024, GROUP_BYTES as usize, 3_000_000] {
        let bytes = pseudo_random(size, size as u64);
        let path = write(temp.path(), &format!("file-{size}.bin"), &bytes);
        let entry = store.add_path(&path, &["Tag".into()]).unwrap();
        assert_eq!(entry.id, content_id(&bytes), "size {size}");
        assert_eq!(entry.size, size as u64);
        assert!(entry.is_complete());
        assert!(entry.keywords.contains(&"tag".to_owned()) && entry.keywords.contains(&"bin".to_owned()));
        // Twice: the same entry, no second copy.
        let copy = write(temp.path(), "copy.bin", &bytes);
        assert_eq!(store.add_path(&copy, &[]).unwrap().id, entry.id);
    }
    assert_eq!(store.list().unwrap().len(), 5);
    let data_files = std::fs::read_dir(temp.path().join("blobs"))
        .unwrap()
        .filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "data"))
        .count();
    assert_eq!(data_files, 5);
}

#[test]
fn ranges_travel_verified_into_a_partial_blob_that_survives_a_reopen() {
    let temp = tempfile::tempdir().unwrap();
    let seeder = Store::open(&temp.path().join("seeder")).unwrap();
    let bytes = pseudo_random(5 * 1024 * 1024 + 123, 7);
    let entry = seeder.add_path(&write(temp.path(), "video.mp4", &bytes), &[]).unwrap();
    let size = entry.size;

    // The last group proves the size before anything is stored.
    let last = group_count(size) - 1..group_count(size);
    let proof = seeder.read_range(entry.id, last.clone()).unwrap();
    Store::check_range(entry.id, size, last.clone(), &proof).unwrap();
    assert!(Store::check_range(entry.id, size + GROUP_BYTES, last, &proof).is_err(), "a wrong size fails");

    let leecher_dir = temp.path().join("leecher");
    {
        let leecher = Store::open(&leecher_dir).unwrap();
        leecher.begin(entry.id, size, "video.mp4", Kind::File).unwrap();
        let groups = piece_groups(size, 1);
        let encoded = seeder.read_range(entry.id, groups.clone()).unwrap();
        leecher.write_range(entry.id, groups.clone(), &encoded).unwrap();
        // A partial holder serves what it has, and refuses what it lacks.
        assert_eq!(leecher.read_range(entry.id, groups.clone()).unwrap(), encoded);
        assert!(matches!(leecher.read_range(entry.id, 0..1), Err(ReadError::Missing)));
        leecher.sync_all().unwrap();
    }
    let leecher = Store::open(&leecher_dir).unwrap();
    let resumed = leecher.get(entry.id).unwrap().unwrap();
    assert_eq!(resumed.verified_groups, 64, "the verified piece survived the reopen");
    transfer(&seeder, &leecher, entry.id, size);
    assert!(leecher.get(entry.id).unwrap().unwrap().is_complete());
    let out = temp.path().join("out/video.mp4");
    leecher.export(entry.id, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}

#[test]
fn a_corrupted_group_is_refused_and_the_groups_before_it_are_kept() {
    let temp = tempfile::tempdir().unwrap();
    let seeder = Store::open(&temp.path().join("seeder")).unwrap();
    let bytes = pseudo_random(2 * 1024 * 1024, 9);
    let entry = seeder.add_path(&write(temp.path(), "a.bin", &bytes), &[]).unwrap();
    let leecher = Store::open(&temp.path().join("leecher")).unwrap();
    leecher.begin(entry.id, entry.size, "a.bin", Kind::File).unwrap();
    let groups = piece_groups(entry.size, 0);
    let mut encoded = seeder.read_range(entry.id, groups.clone()).unwrap();
    // Flip a byte near the end: the last groups fail, the first ones verify.
    let at = encoded.len() - 100;
    encoded[at] ^= 1;
    let outcome = leecher.write_range(entry.id, groups.clone(), &encoded).unwrap();
    assert!(outcome.bad_data.is_some());
    assert!(outcome.verified_groups > 0 && outcome.verified_groups < 64, "{outcome:?}");
    assert!(!leecher.get(entry.id).unwrap().unwrap().is_complete());
    // A truncated answer verifies nothing past its end.
    let short = seeder.read_range(entry.id, piece_groups(entry.size, 1)).unwrap();
    let outcome = leecher.write_range(entry.id, piece_groups(entry.size, 1), &short[..short.len() / 2]).unwrap();
    assert!(outcome.bad_data.is_some());

    // The seeder's copy is edited in place (its modification time moves): the seeder checks
    // what it serves and refuses rather than send bad data.
    let data = temp.path().join("seeder").join(format!("{}.data", entry.id));
    let added_at = std::fs::metadata(&data).unwrap().modified().unwrap();
    let mut stored = std::fs::read(&data).unwrap();
    stored[10] ^= 1;
    std::fs::write(&data, stored).unwrap();
    let set_modified = |at| std::fs::File::options().write(true).open(&data).unwrap().set_modified(at).unwrap();
    set_modified(added_at + std::time::Duration::from_secs(1));
    assert!(matches!(seeder.read_range(entry.id, 0..1), Err(ReadError::Damaged(_))));
    // Rot that leaves size and time as they were is served unchecked, and the downloader's
    // verification refuses it.
    set_modified(added_at);
    let rotten = seeder.read_range(entry.id, 0..1).unwrap();
    let other = Store::open(&temp.path().join("other")).unwrap();
    other.begin(entry.id, entry.size, "a.bin", Kind::File).unwrap();
    let outcome = other.write_range(entry.id, 0..1, &rotten).unwrap();
    assert!(outcome.bad_data.is_some() && outcome.verified_groups == 0, "{outcome:?}");
}

#[test]
fn pieces_written_from_many_threads_at_once_make_one_complete_blob() {
    let temp = tempfile::tempdir().unwrap();
    let seeder = Store::open(&temp.path().join("seeder")).unwrap();
    let bytes = pseudo_random(9 * 1024 * 1024 + 5_000, 4);
    let entry = seeder.add_path(&write(temp.path(), "big.bin", &bytes), &[]).unwrap();
    let leecher = Store::open(&temp.path().join("leecher")).unwrap();
    leecher.begin(entry.id, entry.size, "big.bin", Kind::File).unwrap();
    let pieces = piece_count(entry.size);
    let completions = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let (seeder, leecher, completions) = (&seeder, &leecher, &completions);
            scope.spawn(move || {
                // Each thread takes every fourth piece, and the last two pieces are written
                // twice, as the endgame does.
                let mine = (0..pieces).filter(|p| p % 4 == thread || *p + 2 >= pieces);
                for piece in mine {
                    let groups = piece_groups(entry.size, piece);
                    let encoded = seeder.read_range(entry.id, groups.clone()).unwrap();
                    let outcome = leecher.write_range(entry.id, groups, &encoded).unwrap();
                    assert_eq!(outcome.bad_data, None);
                    if outcome.complete {
                        completions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert!(completions.into_inner() >= 1);
    let got = leecher.get(entry.id).unwrap().unwrap();
    assert!(got.is_complete(), "{got:?}");
    let out = temp.path().join("out.bin");
    leecher.export(entry.id, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    // Reopened, the completed blob serves ranges that verify.
    drop(leecher);
    let leecher = Store::open(&temp.path().join("leecher")).unwrap();
    let third = Store::open(&temp.path().join("third")).unwrap();
    third.begin(entry.id, entry.size, "big.bin", Kind::File).unwrap();
    transfer(&leecher, &third, entry.id, entry.size);
    assert!(third.get(entry.id).unwrap().unwrap().is_complete());
}

#[test]
fn bad_requests_are_refused_and_remove_frees_the_files() {
    let temp = tempfile::tempdir().unwrap();
    let store = Store::open(&temp.path().join("blobs")).unwrap();
    let entry = store.add_path(&write(temp.path(), "small.txt", b"hello"), &[]).unwrap();
    assert!(matches!(store.read_range(entry.id, 0..2), Err(ReadError::OutOfBounds { .. })));
    assert!(matches!(store.read_range(entry.id, 1..1), Err(ReadError::OutOfBounds { .. })));
    assert!(matches!(store.read_range(content_id(b"other"), 0..1), Err(ReadError::NotFound)));
    assert!(store.add_path(&temp.path().join("missing"), &[]).is_err());
    assert!(store.remove(entry.id).unwrap());
    assert!(!store.remove(entry.id).unwrap());
    assert!(store.list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(temp.path().join("blobs")).unwrap().count(), 1, "only blobs.redb is left");
}

#[test]
fn a_directory_is_shared_as_a_manifest_of_its_files() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("album");
    std::fs::create_dir_all(dir.join("disc 2")).unwrap();
    write(&dir, "one.flac", b"first track");
    write(&dir.join("disc 2"), "two.flac", b"second track");
    let store = Store::open(&temp.path().join("blobs")).unwrap();
    let entry = store.add_path(&dir, &[]).unwrap();
    assert_eq!(entry.kind, Kind::Directory);
    let manifest = Manifest::from_bytes(&store.read_all(entry.id).unwrap()).unwrap();
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["disc 2/two.flac", "one.flac"]);
    assert_eq!(manifest.files[1].id, content_id(b"first track"));
    assert_eq!(store.search(&["two".into()], 10).unwrap().len(), 1, "each file is findable too");
}
