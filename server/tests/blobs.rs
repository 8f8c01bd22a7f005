//! The blob store's contract, run against every implementation (today the local
//! directory; an object store would add one line to `stores()`): put a staged upload,
//! read it whole and by byte ranges, list, delete, and what happens with ids and ranges
//! that name nothing.

use std::io::ErrorKind;

use chatapp_server::media::blobs::{self, BlobRead, BlobStore, LocalBlobs, Staging};
use tokio::io::AsyncReadExt;

/// Every implementation, each in a fresh place, with a staging directory for uploads.
async fn stores() -> Vec<(&'static str, Box<dyn BlobStore>, Staging, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("dir");
    let local = LocalBlobs::open(dir.path().join("blobs"))
        .await
        .expect("local store");
    let staging = Staging::open(dir.path().join("tmp"))
        .await
        .expect("staging");
    vec![("local directory", Box::new(local), staging, dir)]
}

async fn read_all(read: BlobRead) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = read.body;
    body.read_to_end(&mut out).await.expect("read");
    assert_eq!(out.len() as u64, read.len, "len says what the body yields");
    out
}

async fn put(store: &dyn BlobStore, staging: &Staging, bytes: &[u8]) -> String {
    let mut temp = staging.create().await.expect("staging file");
    for chunk in bytes.chunks(1000) {
        temp.write(chunk).await.expect("write");
    }
    let id = blobs::new_id();
    store.put(temp, &id).await.expect("put");
    id
}

#[tokio::test]
async fn a_blob_is_put_read_by_ranges_listed_and_deleted() {
    for (name, store, staging, _dir) in stores().await {
        let store = store.as_ref();
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let id = put(store, &staging, &bytes).await;

        let whole = store.get(&id, None).await.expect("get");
        assert_eq!(whole.total, 5000, "{name}");
        assert_eq!(read_all(whole).await, bytes, "{name}");
        assert_eq!(store.size(&id).await.expect("size"), 5000, "{name}");

        for range in [0..1, 100..200, 4999..5000, 0..5000, 2500..2500] {
            let part = store.get(&id, Some(range.clone())).await.expect("range");
            assert_eq!(part.total, 5000, "{name}");
            let start = usize::try_from(range.start).expect("usize");
            let end = usize::try_from(range.end).expect("usize");
            assert_eq!(read_all(part).await, &bytes[start..end], "{name} {range:?}");
        }
        for outside in [4999..5001, 6000..6001] {
            assert!(
                store.get(&id, Some(outside.clone())).await.is_err(),
                "{name} {outside:?}"
            );
        }

        let other = put(store, &staging, b"second").await;
        let mut listed = store.list().await.expect("list");
        listed.sort();
        let mut expected = vec![id.clone(), other.clone()];
        expected.sort();
        assert_eq!(listed, expected, "{name}");

        store.delete(&id).await.expect("delete");
        store.delete(&id).await.expect("deleting again is fine");
        let gone = store.get(&id, None).await.err().expect("gone");
        assert_eq!(gone.kind(), ErrorKind::NotFound, "{name}");
        assert_eq!(
            store.list().await.expect("list"),
            vec![other.clone()],
            "{name}"
        );
    }
}

#[tokio::test]
async fn ids_that_are_not_ours_name_nothing() {
    for (name, store, staging, _dir) in stores().await {
        let store = store.as_ref();
        put(store, &staging, b"x").await;
        for bad in [
            "",
            "../secret",
            "ABCDEF0123456789ABCDEF0123456789",
            "a/b",
            "0",
        ] {
            let err = store.get(bad, None).await.err().expect("refused");
            assert_eq!(err.kind(), ErrorKind::NotFound, "{name} {bad:?}");
            store.delete(bad).await.expect("nothing to delete");
        }
        let temp = staging.create().await.expect("staging file");
        assert!(store.put(temp, "../escape").await.is_err(), "{name}");
    }
}

#[tokio::test]
async fn an_unfinished_upload_leaves_nothing_behind() {
    for (name, store, staging, dir) in stores().await {
        let mut temp = staging.create().await.expect("staging file");
        temp.write(b"half").await.expect("write");
        let staged = temp.path().to_path_buf();
        assert!(staged.exists(), "{name}");
        drop(temp);
        assert!(!staged.exists(), "{name}: an abandoned upload is removed");
        assert!(store.list().await.expect("list").is_empty(), "{name}");
        // A new staging area removes what a crash left.
        std::fs::write(dir.path().join("tmp/leftover"), b"x").expect("leftover");
        Staging::open(dir.path().join("tmp"))
            .await
            .expect("staging");
        assert!(!dir.path().join("tmp/leftover").exists(), "{name}");
    }
}
