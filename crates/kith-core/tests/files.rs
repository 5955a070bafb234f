//! Files (files-v1.md) through in-process engines and relay: sent by a
//! person without a relay, downloaded byte for byte, resumed after an
//! interruption, a tampered chunk caught.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::cell::Cell;

use common::{World, meet};
use sha2::{Digest, Sha256};

/// Bytes that differ everywhere, so a misplaced chunk shows.
fn sample(len: usize) -> Vec<u8> {
    let mut h = Sha256::digest(b"kith file sample");
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend_from_slice(&h);
        h = Sha256::digest(h);
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn a_file_goes_through_the_conversations_relay_and_resumes() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    let bytes = sample((3 << 20) + 1234);
    let path = world.dir.path().join("holiday.jpg");
    std::fs::write(&path, &bytes).unwrap();

    // Interrupted after two chunks, as by Ctrl-C: the future is dropped.
    let moved = Cell::new(0u32);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_tx = Cell::new(Some(stop_tx));
    tokio::select! {
        r = blair.send_file(&ba, &path, Some("the beach"), |p| {
            moved.set(p.moved_chunks);
            if p.moved_chunks == 2 && let Some(tx) = stop_tx.take() {
                let _ = tx.send(());
            }
        }) => panic!("finished before the interruption: {r:?}"),
        _ = stop_rx => {}
    }
    // Chunks already in flight may have landed meanwhile: what counts is
    // that the next run starts where this one recorded it stopped.
    let stopped_at = moved.get();
    let total = kith_files::padded_chunks(bytes.len() as u64).unwrap();
    assert!((2..total).contains(&stopped_at), "{stopped_at}");
    // Run again: only the missing chunks go.
    let (first, last) = (Cell::new(None), Cell::new(None));
    let sent = blair
        .send_file(&ba, &path, Some("the beach"), |p| {
            if first.get().is_none() {
                first.set(Some(p.resumed_chunks));
            }
            last.set(Some(p));
        })
        .await
        .unwrap();
    let last = last.get().unwrap();
    assert_eq!(
        first.get(),
        Some(stopped_at),
        "resumed after the chunks sent"
    );
    assert_eq!(
        last.moved_chunks,
        total - stopped_at,
        "only the missing chunks"
    );
    assert_eq!(sent.file.as_ref().unwrap().name, "holiday.jpg");

    alex.sync().await.unwrap();
    let got = alex.read(&ab).unwrap().pop().unwrap();
    let file = got.file.clone().unwrap();
    assert_eq!(
        (file.size, file.caption.as_str()),
        (bytes.len() as u64, "the beach")
    );
    assert_eq!(got.text, "file: holiday.jpg (3.1 MB) \u{2014} the beach");
    let dir = world.dir.path().join("downloads");
    std::fs::create_dir(&dir).unwrap();
    let saved = alex.download(&ab, &got.id, &dir, |_| {}).await.unwrap();
    assert_eq!(saved, dir.join("holiday.jpg"));
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
    // Again: a second copy beside the first, never over it.
    let again = alex.download(&ab, &got.id, &dir, |_| {}).await.unwrap();
    assert_eq!(again, dir.join("holiday (2).jpg"));
    assert_eq!(
        alex.read(&ab)
            .unwrap()
            .pop()
            .unwrap()
            .file
            .unwrap()
            .saved
            .unwrap(),
        again.to_string_lossy()
    );

    // Deleted for everyone: the blob leaves the relay, Alex's downloaded
    // copy his disk; Blair's own file stays where it was.
    let blobs = || -> i64 {
        let relay = rusqlite::Connection::open(world.relay.db_path()).unwrap();
        relay
            .busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        relay
            .query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(blobs(), 1);
    blair.delete_for_everyone(&ba, &sent.id).await.unwrap();
    assert_eq!(blobs(), 0);
    assert!(path.exists());
    alex.sync().await.unwrap();
    assert!(!again.exists(), "the downloaded copy is gone");
    let got = alex.read(&ab).unwrap().pop().unwrap();
    assert!(got.deleted && got.file.is_none(), "{got:?}");
}

#[tokio::test]
async fn a_chunk_altered_on_the_relay_is_caught_and_nothing_is_saved() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    let path = world.dir.path().join("report.pdf");
    std::fs::write(&path, sample(600_000)).unwrap();
    blair.send_file(&ba, &path, None, |_| {}).await.unwrap();
    alex.sync().await.unwrap();
    let id = alex.read(&ab).unwrap().pop().unwrap().id;

    // The second chunk, altered in the relay's blob file.
    let blobs = kith_testkit::blob_files(world.relay.db_path());
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&blobs[0])
        .unwrap();
    use std::os::unix::fs::FileExt as _;
    file.write_all_at(&[0u8; 64], kith_files::CHUNK as u64 + 100)
        .unwrap();
    let dir = world.dir.path().join("downloads");
    std::fs::create_dir(&dir).unwrap();
    let err = alex.download(&ab, &id, &dir, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("report.pdf"), "{err}");
    assert!(err.to_string().contains("altered"), "{err}");
    assert!(!dir.join("report.pdf").exists());
}
