//! The `Store` contract (see `kith_relay::store`), checked against every
//! store. Each check takes a store and the events it published; `stores!`
//! runs them all for one implementation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ed25519_dalek::{Signer, SigningKey};
use kith_relay::store::{
    BlobClaim, EventSink, NewBlob, NewChannel, PostgresOptions, PostgresStore, Quotas,
    SqliteOptions, SqliteStore, Store, StoreError, StoreEvent,
};
use kith_wire::relay::request::{BlobCreate, blob_claim_message};
use kith_wire::relay::{BlobId, ChannelRef, KeyGrant, PublicKey, RelayId, Rights, Signature};
use std::sync::{Arc, Mutex};

const NOW: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;

#[derive(Default)]
struct Recorder(Mutex<Vec<StoreEvent>>);

impl EventSink for Recorder {
    fn publish(&self, events: &[StoreEvent]) {
        self.0.lock().unwrap().extend_from_slice(events);
    }
}

impl Recorder {
    fn take(&self) -> Vec<StoreEvent> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn quotas() -> Quotas {
    Quotas {
        max_channel_messages: 5,
        max_channel_bytes: 5 * 256,
        max_channel_blob_bytes: 4096,
        max_channel_keys: 4,
        max_blob_chunks: 4,
    }
}

fn key(n: u8) -> PublicKey {
    PublicKey([n; 32])
}

fn grant(n: u8, rights: Rights) -> KeyGrant {
    KeyGrant {
        key: key(n),
        rights,
    }
}

async fn create(
    store: &dyn Store,
    grants: Vec<KeyGrant>,
) -> kith_wire::relay::response::ChannelCreated {
    store
        .create_channel(NewChannel {
            owner: key(1),
            grants,
            message_ttl_ms: DAY,
            channel_ttl_ms: 10 * DAY,
            now_ms: NOW,
        })
        .await
        .unwrap()
}

/// A blob request by the owner (key 1).
fn blob(
    write_id: kith_wire::relay::WriteId,
    chunk_size: u32,
    chunk_count: u32,
    ttl_secs: u32,
    read_once: bool,
) -> NewBlob {
    NewBlob {
        spec: BlobCreate {
            write_id,
            chunk_size,
            chunk_count,
            ttl_secs,
            read_once,
            claim_key: read_once.then(|| PublicKey(claimer().verifying_key().to_bytes())),
        },
        key: key(1),
        now_ms: NOW,
    }
}

/// The holder of a read-once blob's secret.
fn claimer() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// A fetch signed by `signer` (`None`: unsigned, as for any other blob).
fn claim(blob_id: BlobId, signer: Option<&SigningKey>) -> BlobClaim {
    let message = blob_claim_message(&RelayId([7; 32]), &blob_id);
    BlobClaim {
        signature: signer.map(|k| Signature(k.sign(&message).to_bytes())),
        message,
    }
}

fn is_unauthorized<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Unauthorized))
}

async fn appends_are_sequenced_and_published_in_commit_order(
    store: Arc<dyn Store>,
    events: &Recorder,
) {
    let ch = create(&*store, vec![grant(2, Rights::WRITE)]).await;
    let mut tasks = Vec::new();
    for i in 0..5u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(ch.write_id, key(2), vec![i; 256], None, NOW)
                .await
                .unwrap()
                .seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let published: Vec<u64> = events
        .take()
        .into_iter()
        .filter_map(|e| match e {
            StoreEvent::Appended { message, .. } => Some(message.seq),
            _ => None,
        })
        .collect();
    assert_eq!(published, [1, 2, 3, 4, 5], "events in commit order");
}

async fn unknown_channel_and_missing_right_are_the_same_error(store: Arc<dyn Store>, _: &Recorder) {
    let ch = create(&*store, vec![grant(2, Rights::READ)]).await;
    let unknown = kith_wire::relay::WriteId([0xee; 32]);
    assert!(is_unauthorized(
        store.append(unknown, key(1), vec![0; 256], None, NOW).await
    ));
    assert!(is_unauthorized(
        store
            .append(ch.write_id, key(2), vec![0; 256], None, NOW)
            .await
    ));
    assert!(is_unauthorized(
        store
            .append(ch.write_id, key(9), vec![0; 256], None, NOW)
            .await
    ));
    assert!(is_unauthorized(
        store.read(ch.read_id, key(9), 0, 10, 1 << 20, NOW).await
    ));
    assert!(is_unauthorized(
        store
            .add_key(ch.write_id, key(2), grant(3, Rights::READ), NOW)
            .await
    ));
    // Past its idle TTL a channel is unknown, before any sweep.
    assert!(is_unauthorized(
        store
            .append(ch.write_id, key(1), vec![0; 256], None, NOW + 11 * DAY)
            .await
    ));
}

/// `append_after` (relay.md §5.2a): taken only at the head it names; a
/// refused one changes nothing, and a stranger learns nothing of the head.
async fn append_after_is_taken_only_at_the_head_it_names(store: Arc<dyn Store>, _: &Recorder) {
    let ch = create(&*store, vec![grant(2, Rights::WRITE)]).await;
    let first = store
        .append(ch.write_id, key(2), vec![1; 256], Some(0), NOW)
        .await
        .unwrap();
    assert_eq!(first.seq, 1);
    assert!(matches!(
        store
            .append(ch.write_id, key(1), vec![2; 256], Some(0), NOW)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(is_unauthorized(
        store
            .append(ch.write_id, key(9), vec![2; 256], Some(0), NOW)
            .await
    ));
    let second = store
        .append(ch.write_id, key(1), vec![2; 256], Some(1), NOW)
        .await
        .unwrap();
    assert_eq!(second.seq, 2, "the refused append used no sequence number");
    let page = store
        .read(ch.read_id, key(1), 0, 10, 1 << 20, NOW)
        .await
        .unwrap();
    assert_eq!(page.messages.items.len(), 2);
}

async fn quotas_are_enforced(store: Arc<dyn Store>, _: &Recorder) {
    let ch = create(&*store, vec![]).await;
    for _ in 0..5 {
        store
            .append(ch.write_id, key(1), vec![0; 256], None, NOW)
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .append(ch.write_id, key(1), vec![0; 256], None, NOW)
            .await,
        Err(StoreError::QuotaExceeded(_))
    ));
    for k in 2..=4 {
        store
            .add_key(ch.write_id, key(1), grant(k, Rights::READ), NOW)
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .add_key(ch.write_id, key(1), grant(5, Rights::READ), NOW)
            .await,
        Err(StoreError::QuotaExceeded(_))
    ));
    let blob = |count| blob(ch.write_id, 1024, count, 60, false);
    assert!(matches!(
        store.blob_create(blob(5)).await,
        Err(StoreError::QuotaExceeded(_))
    ));
    store.blob_create(blob(4)).await.unwrap();
    assert!(matches!(
        store.blob_create(blob(1)).await,
        Err(StoreError::QuotaExceeded(_))
    ));
}

async fn acknowledged_messages_go_when_every_reader_has_them(store: Arc<dyn Store>, _: &Recorder) {
    let ch = create(&*store, vec![grant(2, Rights::READ)]).await;
    for _ in 0..3 {
        store
            .append(ch.write_id, key(1), vec![0; 256], None, NOW)
            .await
            .unwrap();
    }
    // A reader added later starts at the end and holds nothing back.
    store
        .add_key(ch.write_id, key(1), grant(3, Rights::READ), NOW)
        .await
        .unwrap();
    store.ack(ch.read_id, key(2), 3, NOW).await.unwrap();
    let status = store
        .status(ChannelRef::Read(ch.read_id), key(1), NOW)
        .await
        .unwrap();
    assert_eq!(
        status.message_count, 3,
        "the owner (a reader too) has not acknowledged"
    );
    store.ack(ch.read_id, key(1), 2, NOW).await.unwrap();
    let status = store
        .status(ChannelRef::Read(ch.read_id), key(1), NOW)
        .await
        .unwrap();
    assert_eq!((status.message_count, status.first_seq), (1, 3));
    // Revoking the slowest reader releases what only it was holding.
    store
        .add_key(ch.write_id, key(1), grant(4, Rights::ADMIN), NOW)
        .await
        .unwrap();
    store
        .revoke_key(ch.write_id, key(4), key(1), NOW)
        .await
        .unwrap();
    let status = store
        .status(ChannelRef::Read(ch.read_id), key(4), NOW)
        .await
        .unwrap();
    assert_eq!(status.message_count, 0);
}

async fn removing_a_reader_is_published_and_the_last_admin_stays(
    store: Arc<dyn Store>,
    events: &Recorder,
) {
    let ch = create(&*store, vec![grant(2, Rights::READ | Rights::WRITE)]).await;
    events.take();
    // Losing the read right by re-grant counts as removal.
    store
        .add_key(ch.write_id, key(1), grant(2, Rights::WRITE), NOW)
        .await
        .unwrap();
    store
        .revoke_key(ch.write_id, key(1), key(2), NOW)
        .await
        .unwrap();
    let removed: Vec<PublicKey> = events
        .take()
        .into_iter()
        .filter_map(|e| match e {
            StoreEvent::ReaderRemoved { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(
        removed,
        [key(2)],
        "only the change that took the read right away"
    );
    assert!(matches!(
        store.revoke_key(ch.write_id, key(1), key(1), NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .add_key(ch.write_id, key(1), grant(1, Rights::READ), NOW)
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .delete_channel(ch.write_id, key(1), NOW)
        .await
        .unwrap();
    assert!(
        events
            .take()
            .iter()
            .any(|e| matches!(e, StoreEvent::ChannelClosed { .. }))
    );
    assert!(is_unauthorized(
        store
            .status(ChannelRef::Write(ch.write_id), key(1), NOW)
            .await
    ));
}

async fn read_once_blobs_are_taken_exactly_once(store: Arc<dyn Store>, _: &Recorder) {
    let ch = create(&*store, vec![]).await;
    let blob = store
        .blob_create(blob(ch.write_id, 256, 1, 60, true))
        .await
        .unwrap();
    let id = blob.blob_id;
    assert!(
        matches!(
            store
                .blob_get(id, 0, claim(id, Some(&claimer())), NOW)
                .await,
            Err(StoreError::NotFound)
        ),
        "not yet uploaded"
    );
    store
        .blob_put(ch.write_id, key(1), id, 0, vec![5; 256], NOW)
        .await
        .unwrap();
    // Without the secret (no claim, or signed by another key) a fetch is
    // refused and consumes nothing.
    let stranger = SigningKey::from_bytes(&[8; 32]);
    for attempt in [claim(id, None), claim(id, Some(&stranger))] {
        assert!(is_unauthorized(store.blob_get(id, 0, attempt, NOW).await));
    }
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .blob_get(id, 0, claim(id, Some(&claimer())), NOW)
                .await
                .is_ok()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    let status = store
        .status(ChannelRef::Write(ch.write_id), key(1), NOW)
        .await
        .unwrap();
    assert_eq!(status.blob_bytes, 0, "the reservation is released");
}

async fn sweeps_delete_what_expired(store: Arc<dyn Store>, events: &Recorder) {
    let ch = create(&*store, vec![]).await;
    store
        .append(ch.write_id, key(1), vec![0; 256], None, NOW)
        .await
        .unwrap();
    let blob = store
        .blob_create(blob(ch.write_id, 256, 1, 1, false))
        .await
        .unwrap();
    events.take();
    let swept = store.sweep(NOW + 2 * DAY).await.unwrap();
    assert_eq!((swept.messages, swept.blobs, swept.channels), (1, 1, 0));
    assert!(matches!(
        store
            .blob_get(blob.blob_id, 0, claim(blob.blob_id, None), NOW + 2 * DAY)
            .await,
        Err(StoreError::NotFound)
    ));
    let status = store
        .status(ChannelRef::Write(ch.write_id), key(1), NOW + 2 * DAY)
        .await
        .unwrap();
    assert_eq!(
        (
            status.message_count,
            status.message_bytes,
            status.blob_bytes
        ),
        (0, 0, 0)
    );
    let swept = store.sweep(NOW + 30 * DAY).await.unwrap();
    assert_eq!(swept.channels, 1);
    assert!(
        events
            .take()
            .iter()
            .any(|e| matches!(e, StoreEvent::ChannelClosed { .. }))
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.channels, 0);
}

async fn nonces_are_remembered_once_until_they_expire(store: Arc<dyn Store>, _: &Recorder) {
    assert!(store.remember_nonce([1; 16], NOW + 1_000).await.unwrap());
    assert!(
        !store.remember_nonce([1; 16], NOW + 1_000).await.unwrap(),
        "a replay"
    );
    assert!(store.remember_nonce([2; 16], NOW + 1_000).await.unwrap());
    store.sweep(NOW + 2_000).await.unwrap();
    assert!(
        store.remember_nonce([1; 16], NOW + 3_000).await.unwrap(),
        "forgotten once expired"
    );
}

async fn a_message_with_its_own_ttl_goes_when_it_expires(store: Arc<dyn Store>, _: &Recorder) {
    let ch = create(&*store, vec![grant(2, Rights::WRITE)]).await;
    let minute = 60_000;
    store
        .append_expiring(ch.write_id, key(2), vec![1; 256], None, Some(minute), NOW)
        .await
        .unwrap();
    store
        .append(ch.write_id, key(1), vec![2; 256], None, NOW)
        .await
        .unwrap();
    // Conditional, like a group's messages.
    store
        .append_expiring(
            ch.write_id,
            key(2),
            vec![3; 256],
            Some(2),
            Some(minute),
            NOW,
        )
        .await
        .unwrap();
    let read = |at| store.read(ch.read_id, key(1), 0, 10, 1 << 20, at);
    assert_eq!(
        read(NOW + minute - 1).await.unwrap().messages.items.len(),
        3
    );
    let page = read(NOW + minute).await.unwrap();
    let kept: Vec<_> = page.messages.items.iter().map(|m| m.seq).collect();
    assert_eq!(
        kept,
        vec![2],
        "the expiring messages are never served after their TTL"
    );
    let swept = store.sweep(NOW + minute).await.unwrap();
    assert_eq!(swept.messages, 2, "and deleted by the sweep");
    // A TTL longer than the channel's keeps the channel's.
    store
        .append_expiring(
            ch.write_id,
            key(2),
            vec![4; 256],
            None,
            Some(400 * DAY),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(store.sweep(NOW + 2 * DAY).await.unwrap().messages, 2);
}

async fn chunks_are_kept_whole_and_never_overwritten(store: Arc<dyn Store>, _: &Recorder) {
    let ch = create(&*store, vec![]).await;
    let id = store
        .blob_create(blob(ch.write_id, 256, 4, 60, false))
        .await
        .unwrap()
        .blob_id;
    let get = |index| {
        let store = store.clone();
        async move { store.blob_get(id, index, claim(id, None), NOW).await }
    };
    let put = |index, byte: u8| {
        let store = store.clone();
        async move {
            store
                .blob_put(ch.write_id, key(1), id, index, vec![byte; 256], NOW)
                .await
        }
    };
    put(2, 2).await.unwrap();
    put(0, 0).await.unwrap();
    assert!(
        matches!(get(1).await, Err(StoreError::NotFound)),
        "not yet put"
    );
    let two = get(2).await.unwrap();
    assert_eq!((two.chunk_count, two.data), (4, vec![2; 256]));
    assert_eq!(get(0).await.unwrap().data, vec![0; 256]);
    put(2, 2).await.unwrap();
    assert!(matches!(put(2, 7).await, Err(StoreError::Conflict(_))));
    assert_eq!(get(2).await.unwrap().data, vec![2; 256], "not overwritten");
    assert!(matches!(
        store
            .blob_put(ch.write_id, key(1), id, 3, vec![3; 255], NOW)
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    store
        .blob_delete(ch.write_id, key(1), id, NOW)
        .await
        .unwrap();
    assert!(matches!(get(2).await, Err(StoreError::NotFound)));
}

/// Directories: one enrolment per link, one entry per member, searches by
/// word prefix that see only valid members in a members-only directory, and
/// removal that revokes.
async fn directories_enrol_once_search_by_word_and_revoke(store: Arc<dyn Store>, _: &Recorder) {
    use kith_relay::store::{Admission, Search};
    use kith_wire::dir::Entry;
    let info = kith_relay::directory::create(&*store, "school", true, NOW)
        .await
        .unwrap();
    assert!(info.members_only && info.keys.len() == 1);
    assert!(matches!(
        kith_relay::directory::create(&*store, "school", false, NOW).await,
        Err(kith_relay::directory::DirectoryError::Store(
            StoreError::Conflict(_)
        ))
    ));
    let admission = |until| Admission {
        statement: "current student".into(),
        valid_from_ms: NOW,
        valid_until_ms: until,
    };
    let (alex, emery) = ([1; 32], [2; 32]);
    let alex_id = store
        .dir_admit("school", [10; 32], admission(NOW + DAY), NOW)
        .await
        .unwrap();
    store
        .dir_admit("school", [11; 32], admission(NOW + 100), NOW)
        .await
        .unwrap();
    let got = store
        .dir_enrol("school", [10; 32], alex, NOW)
        .await
        .unwrap();
    assert_eq!(got, admission(NOW + DAY));
    // Once per link, once per key.
    assert!(is_unauthorized(
        store.dir_enrol("school", [10; 32], emery, NOW).await
    ));
    assert!(is_unauthorized(
        store.dir_enrol("school", [11; 32], alex, NOW).await
    ));
    assert!(is_unauthorized(
        store.dir_enrol("school", [12; 32], emery, NOW).await
    ));
    store
        .dir_enrol("school", [11; 32], emery, NOW)
        .await
        .unwrap();
    let entry = |name: &str, text: &str| {
        Some(Entry {
            display_name: name.into(),
            text: text.into(),
            address: format!("https://r.example/a/{name}"),
        })
    };
    store
        .dir_publish("school", alex, entry("Alex K.", "Year 11"), NOW)
        .await
        .unwrap();
    store
        .dir_publish(
            "school",
            emery,
            entry("Emery Stone", "Year 12, chess-club"),
            NOW + 1,
        )
        .await
        .unwrap();
    let search = |query: &str, at: u64| Search {
        directory: "school".into(),
        words: Search::words(query),
        members_only: true,
        now_ms: at,
        limit: 50,
    };
    let names = |found: Vec<Entry>| {
        found
            .into_iter()
            .map(|e| e.display_name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.dir_search(search("", NOW + 2)).await.unwrap()),
        ["Emery Stone", "Alex K."]
    );
    assert_eq!(
        names(
            store
                .dir_search(search("CHESS eme", NOW + 2))
                .await
                .unwrap()
        ),
        ["Emery Stone"]
    );
    assert_eq!(
        names(store.dir_search(search("year", NOW + 2)).await.unwrap()).len(),
        2
    );
    assert!(
        store
            .dir_search(search("hess", NOW + 2))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .dir_search(search("emery alex", NOW + 2))
            .await
            .unwrap()
            .is_empty()
    );
    // Publishing again replaces the entry.
    store
        .dir_publish("school", alex, entry("Alex K.", "Year 12 now"), NOW + 3)
        .await
        .unwrap();
    assert_eq!(
        names(store.dir_search(search("11", NOW + 4)).await.unwrap()),
        Vec::<String>::new()
    );
    // Emery's admission ends: she is no longer a member, nor listed.
    assert!(
        store
            .dir_member("school", emery, NOW + 50)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .dir_member("school", emery, NOW + 100)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        names(store.dir_search(search("", NOW + 100)).await.unwrap()),
        ["Alex K."]
    );
    // Removing Alex drops his entry and puts his key on the revocation list.
    assert!(store.dir_remove("school", alex_id, NOW + 5).await.unwrap());
    assert!(!store.dir_remove("school", alex_id, NOW + 6).await.unwrap());
    assert!(
        store
            .dir_member("school", alex, NOW + 7)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .dir_search(search("alex", NOW + 7))
            .await
            .unwrap()
            .is_empty()
    );
    let row = store.dir_load("school", NOW + 7).await.unwrap().unwrap();
    assert_eq!(row.revoked, vec![alex]);
    let members = store.dir_members("school").await.unwrap();
    assert_eq!(members.len(), 2);
    assert!(members[0].removed && members[0].entry_name.is_none());
    assert_eq!(members[1].entry_name.as_deref(), Some("Emery Stone"));
    // Rotation adds a key; the list of directories counts what is there.
    kith_relay::directory::rotate(&*store, "school", NOW + 8)
        .await
        .unwrap();
    assert_eq!(
        store
            .dir_load("school", NOW + 9)
            .await
            .unwrap()
            .unwrap()
            .keys
            .len(),
        2
    );
    let all = store.dir_list().await.unwrap();
    assert_eq!((all.len(), all[0].members, all[0].entries), (1, 1, 1));
    // Leaving ends the membership and the entry.
    store.dir_leave("school", emery, NOW + 10).await.unwrap();
    assert_eq!(store.dir_list().await.unwrap()[0].entries, 0);
    assert!(store.dir_load("nosuch", NOW).await.unwrap().is_none());
    // A new link admits a key that left (or was removed) again.
    store
        .dir_admit("school", [13; 32], admission(NOW + DAY), NOW + 11)
        .await
        .unwrap();
    store
        .dir_enrol("school", [13; 32], alex, NOW + 12)
        .await
        .unwrap();
    assert!(
        store
            .dir_member("school", alex, NOW + 13)
            .await
            .unwrap()
            .is_some()
    );
    // Alex is off the revocation list; Emery, who left, is on it.
    assert_eq!(
        store
            .dir_load("school", NOW + 13)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        vec![emery]
    );
    // A sweep after the admissions end forgets them and their entries.
    store
        .dir_publish("school", alex, entry("Alex K.", "back"), NOW + 14)
        .await
        .unwrap();
    store.sweep(NOW + DAY).await.unwrap();
    assert!(store.dir_members("school").await.unwrap().is_empty());
    assert_eq!(store.dir_list().await.unwrap()[0].entries, 0);
}

macro_rules! contract {
    ($open:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let events = Arc::new(Recorder::default());
                let Some((store, guard)) = $open(events.clone()).await else {
                    return;
                };
                super::$check(store.clone(), &events).await;
                store.close().await;
                guard.release().await;
            }
        )*
    };
}

macro_rules! stores {
    ($name:ident, $open:expr) => {
        mod $name {
            use super::*;
            contract!($open;
                appends_are_sequenced_and_published_in_commit_order,
                append_after_is_taken_only_at_the_head_it_names,
                a_message_with_its_own_ttl_goes_when_it_expires,
                unknown_channel_and_missing_right_are_the_same_error,
                quotas_are_enforced,
                acknowledged_messages_go_when_every_reader_has_them,
                removing_a_reader_is_published_and_the_last_admin_stays,
                read_once_blobs_are_taken_exactly_once,
                chunks_are_kept_whole_and_never_overwritten,
                sweeps_delete_what_expired,
                nonces_are_remembered_once_until_they_expire,
                directories_enrol_once_search_by_word_and_revoke,
            );
        }
    };
}

/// What a test's store leaves behind, removed after the test.
enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { url: String, schema: String },
}

impl Guard {
    async fn release(self) {
        if let Guard::Schema { url, schema } = self {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
    }
}

async fn open_sqlite(events: Arc<Recorder>) -> Option<(Arc<dyn Store>, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        SqliteOptions {
            path: dir.path().join("relay.db"),
            quotas: quotas(),
            read_connections: 2,
            write_queue: 64,
            max_batch: 16,
        },
        events,
    )
    .unwrap();
    Some((Arc::new(store), Guard::Dir(dir)))
}

/// A PostgreSQL store in a schema of its own, on the server named by
/// `KITH_TEST_POSTGRES_URL`; without it the test says it is skipped.
async fn open_postgres(events: Arc<Recorder>) -> Option<(Arc<dyn Store>, Guard)> {
    let url = kith_testkit::postgres_url()?;
    let schema = kith_testkit::unique_schema();
    let store = PostgresStore::open(
        PostgresOptions {
            url: url.clone(),
            schema: Some(schema.clone()),
            quotas: quotas(),
            pool_size: 4,
        },
        events,
    )
    .await
    .unwrap();
    Some((Arc::new(store), Guard::Schema { url, schema }))
}

stores!(sqlite, open_sqlite);
stores!(postgres, open_postgres);

/// SQLite keeps chunk bodies in one file per blob beside the database:
/// written once, removed with the blob, and swept when left behind; blobs
/// made before the files existed are still served from the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_blob_files_come_and_go_with_their_blobs() {
    let events = Arc::new(Recorder::default());
    let (store, guard) = open_sqlite(events).await.unwrap();
    let Guard::Dir(dir) = &guard else {
        unreachable!()
    };
    let db = dir.path().join("relay.db");
    let ch = create(&*store, vec![]).await;
    let id = store
        .blob_create(blob(ch.write_id, 256, 2, 60, false))
        .await
        .unwrap()
        .blob_id;
    store
        .blob_put(ch.write_id, key(1), id, 1, vec![1; 256], NOW)
        .await
        .unwrap();
    let files = kith_testkit::blob_files(&db);
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 512);
    let in_db: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM blob_chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(in_db, 0, "the bytes are not in the database too");
    store
        .blob_delete(ch.write_id, key(1), id, NOW)
        .await
        .unwrap();
    assert!(
        kith_testkit::blob_files(&db).is_empty(),
        "removed with the blob"
    );

    // A file whose blob is gone (a crash between the two) is swept.
    let stray = db.with_file_name("relay.db-blobs").join("ab".repeat(32));
    std::fs::write(&stray, b"left behind").unwrap();
    store.sweep(NOW).await.unwrap();
    assert!(!stray.exists());

    // A blob made before this storage keeps its chunks in the database.
    let old = store
        .blob_create(blob(ch.write_id, 256, 2, 60, false))
        .await
        .unwrap()
        .blob_id;
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE blobs SET in_file = 0", [])
        .unwrap();
    store
        .blob_put(ch.write_id, key(1), old, 0, vec![4; 256], NOW)
        .await
        .unwrap();
    assert!(kith_testkit::blob_files(&db).is_empty());
    let got = store.blob_get(old, 0, claim(old, None), NOW).await.unwrap();
    assert_eq!(got.data, vec![4; 256]);
    store.close().await;
    guard.release().await;
}
