// The relay protocol suite, included by `relay.rs` (SQLite) and
// `relay_postgres.rs` (PostgreSQL); `STORE` names the store.

use common::*;
use kith_relay_client::{ChannelOptions, RelayClient, generate_key, public_key, sign_request};
use kith_relay::time::now_ms;
use kith_wire::Codec;
use kith_wire::relay::push::{ClientFrame, ServerFrame};
use kith_wire::relay::request::{
    Bind,
    Append, MAX_SIGNED_REQUEST, Operation, Read, RequestBody, Subscribe,
};
use kith_wire::relay::response::{Acked, ErrorBody, ErrorCode, Messages};
use kith_wire::relay::{
    CHUNK_SIZE, ChannelRef, KeyGrant, Nonce, PROTOCOL_VERSION, ReadId, RelayId, Rights, WriteId,
};
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

#[tokio::test]
async fn write_read_from_cursor_and_acknowledge() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);

    for i in 1..=3u8 {
        let sent = client
            .append(&ch.writer, w, &payload(i, 256))
            .await
            .unwrap();
        assert_eq!(sent.seq, u64::from(i), "relay-assigned sequence numbers");
    }
    let all = client
        .read(&ch.reader, r, 0, 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(all.last_seq, 3);
    let seqs: Vec<u64> = all.items.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    for m in &all.items {
        assert_eq!(m.payload, payload(m.seq as u8, 256));
    }
    let tail = client
        .read(&ch.reader, r, 2, 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(tail.items.len(), 1);
    assert_eq!(tail.items[0].seq, 3);
    let page = client
        .read(&ch.reader, r, 0, 2, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2, "max_messages is honoured");

    // Rights are per key: the writer cannot read, the reader cannot write.
    assert_eq!(
        code(client.read(&ch.writer, r, 0, 10, Duration::ZERO).await),
        ErrorCode::UNAUTHORIZED
    );
    assert_eq!(
        code(client.append(&ch.reader, w, &payload(9, 256)).await),
        ErrorCode::UNAUTHORIZED
    );

    // Messages go once every reader (owner and reader key) has acknowledged.
    let acked: Acked = client.ack(&ch.reader, r, 2).await.unwrap();
    assert_eq!(acked.acked_seq, 2);
    let status = client
        .status(&ch.owner, ChannelRef::Write(w))
        .await
        .unwrap();
    assert_eq!(
        status.message_count, 3,
        "the owner has not acknowledged yet"
    );
    client.ack(&ch.owner, r, 3).await.unwrap();
    let status = client
        .status(&ch.owner, ChannelRef::Write(w))
        .await
        .unwrap();
    assert_eq!(
        (status.message_count, status.first_seq, status.last_seq),
        (1, 3, 3)
    );
    let left = client
        .read(&ch.reader, r, 0, 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(left.items.iter().map(|m| m.seq).collect::<Vec<_>>(), [3]);
    // A cursor never moves back, and cannot pass the last message.
    assert_eq!(client.ack(&ch.reader, r, 1).await.unwrap().acked_seq, 2);
    assert_eq!(
        code(client.ack(&ch.reader, r, 4).await),
        ErrorCode::INVALID_ARGUMENT
    );

    // The admin sees every key; others only their own rights.
    let keys = status.keys.unwrap();
    assert_eq!(keys.len(), 3);
    let reader_view = client
        .status(&ch.reader, ChannelRef::Read(r))
        .await
        .unwrap();
    assert_eq!(reader_view.rights, Rights::READ);
    assert!(reader_view.keys.is_none());
}

#[tokio::test]
async fn revoked_writer_is_refused_by_the_relay() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let w = ch.created.write_id;
    client
        .append(&ch.writer, w, &payload(1, 256))
        .await
        .unwrap();
    client
        .revoke_key(&ch.owner, w, public_key(&ch.writer))
        .await
        .unwrap();
    assert_eq!(
        code(client.append(&ch.writer, w, &payload(2, 256)).await),
        ErrorCode::UNAUTHORIZED
    );
    // Revoking twice is harmless; the last admin key cannot be revoked.
    client
        .revoke_key(&ch.owner, w, public_key(&ch.writer))
        .await
        .unwrap();
    assert_eq!(
        code(client.revoke_key(&ch.owner, w, public_key(&ch.owner)).await),
        ErrorCode::CONFLICT
    );
    // Only an admin manages keys.
    let other = generate_key().unwrap();
    let grant = KeyGrant {
        key: public_key(&other),
        rights: Rights::WRITE,
    };
    assert_eq!(
        code(client.add_key(&ch.reader, w, grant).await),
        ErrorCode::UNAUTHORIZED
    );
    client.add_key(&ch.owner, w, grant).await.unwrap();
    client.append(&other, w, &payload(3, 256)).await.unwrap();
}

#[tokio::test]
async fn full_channel_refuses_until_readers_acknowledge() {
    let relay = relay(unlimited().env("KITH_RELAY_LIMITS__MAX_CHANNEL_MESSAGES", 3));
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);
    for i in 0..3 {
        client
            .append(&ch.writer, w, &payload(i, 256))
            .await
            .unwrap();
    }
    let full = client.append(&ch.writer, w, &payload(4, 256)).await;
    assert_eq!(code(full), ErrorCode::QUOTA_EXCEEDED);
    assert_eq!(ErrorCode::QUOTA_EXCEEDED.http_status(), 507);
    client.ack(&ch.reader, r, 3).await.unwrap();
    client.ack(&ch.owner, r, 3).await.unwrap();
    assert_eq!(
        client
            .append(&ch.writer, w, &payload(4, 256))
            .await
            .unwrap()
            .seq,
        4
    );
}

#[tokio::test]
async fn payload_sizes_must_be_buckets() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let w = ch.created.write_id;
    assert_eq!(
        code(client.append(&ch.writer, w, &payload(0, 300)).await),
        ErrorCode::BAD_SIZE
    );
    assert_eq!(
        code(client.append(&ch.writer, w, &[]).await),
        ErrorCode::BAD_SIZE
    );
    client
        .append(&ch.writer, w, &payload(0, 262_144))
        .await
        .unwrap();
    // Beyond the largest bucket the body itself is too large.
    assert_eq!(
        code(
            client
                .append(&ch.writer, w, &payload(0, MAX_SIGNED_REQUEST as usize))
                .await
        ),
        ErrorCode::TOO_LARGE
    );
}

#[tokio::test]
async fn messages_and_idle_channels_expire() {
    let relay = relay(unlimited().env("KITH_RELAY_SWEEP_INTERVAL_SECS", 1));
    let client = client(&relay);
    let short_messages = ChannelOptions {
        message_ttl: Some(Duration::from_secs(1)),
        ..ChannelOptions::default()
    };
    let ch = channel(&client, short_messages).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);
    client
        .append(&ch.writer, w, &payload(7, 256))
        .await
        .unwrap();
    assert_eq!(
        client
            .read(&ch.reader, r, 0, 10, Duration::ZERO)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // Expired messages are not served, and the sweeper deletes them.
    let after = eventually("the message's expiry", Duration::from_secs(30), || async {
        let page = client
            .read(&ch.reader, r, 0, 10, Duration::ZERO)
            .await
            .unwrap();
        page.items.is_empty().then_some(page)
    })
    .await;
    assert_eq!(after.last_seq, 1);
    // Expired is gone for status too, swept or not.
    let status = client
        .status(&ch.owner, ChannelRef::Write(w))
        .await
        .unwrap();
    assert_eq!(
        (status.message_count, status.message_bytes, status.first_seq),
        (0, 0, 0)
    );

    let short_channel = ChannelOptions {
        channel_ttl: Some(Duration::from_secs(1)),
        ..ChannelOptions::default()
    };
    let idle = channel(&client, short_channel).await;
    // Once the relay's clock passes its expiry (asked without touching the
    // channel: any use of it would push the expiry on), an expired channel
    // is as unknown.
    eventually("the channel's expiry time", Duration::from_secs(30), || async {
        let now = client.info().await.unwrap().server_time_ms;
        (now > idle.created.expires_at_ms).then_some(())
    })
    .await;
    assert_eq!(
        code(
            client
                .append(&idle.writer, idle.created.write_id, &payload(1, 256))
                .await
        ),
        ErrorCode::UNAUTHORIZED,
        "an expired channel is as unknown"
    );
    // TTLs above the relay's maximum are refused.
    let too_long = ChannelOptions {
        message_ttl: Some(Duration::from_secs(10 * 365 * 86_400)),
        ..ChannelOptions::default()
    };
    assert_eq!(
        code(
            client
                .create_channel(&generate_key().unwrap(), too_long)
                .await
        ),
        ErrorCode::INVALID_ARGUMENT
    );
}

/// Signs `op` by hand, with the given timestamp.
async fn signed_at(
    client: &RelayClient,
    key: &ed25519_dalek::SigningKey,
    op: Operation,
    ts: u64,
) -> Vec<u8> {
    let info = client.cached_info().await.unwrap();
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).unwrap();
    sign_request(
        &RequestBody {
            version: PROTOCOL_VERSION,
            relay_id: info.relay_id,
            timestamp_ms: ts,
            nonce: Nonce(nonce),
            signer: public_key(key),
            op,
        },
        key,
    )
}

#[tokio::test]
async fn replays_stale_and_misdirected_requests_are_refused() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let w = ch.created.write_id;
    let op = Operation::Append(Append {
        write_id: w,
        payload: payload(1, 256),
    });
    let info = client.info().await.unwrap();

    let bytes = signed_at(
        &client,
        &ch.writer,
        op.clone(),
        now_ms().max(info.min_timestamp_ms),
    )
    .await;
    client
        .post("/v1/channel/append", bytes.clone(), Duration::from_secs(5))
        .await
        .unwrap();
    let again = client
        .post("/v1/channel/append", bytes, Duration::from_secs(5))
        .await;
    assert_eq!(code(again), ErrorCode::REPLAYED);
    let status = client
        .status(&ch.owner, ChannelRef::Write(w))
        .await
        .unwrap();
    assert_eq!(status.message_count, 1, "the replay stored nothing");

    let stale = signed_at(&client, &ch.writer, op.clone(), now_ms() - 10 * 60_000).await;
    let e = client
        .post("/v1/channel/append", stale, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::STALE_TIMESTAMP));

    // The same request signed for another relay.
    let other = kith_relay_client::sign_request(
        &RequestBody {
            version: PROTOCOL_VERSION,
            relay_id: RelayId([9; 32]),
            timestamp_ms: now_ms().max(info.min_timestamp_ms),
            nonce: Nonce([1; 16]),
            signer: public_key(&ch.writer),
            op: op.clone(),
        },
        &ch.writer,
    );
    let e = client
        .post("/v1/channel/append", other, Duration::from_secs(5))
        .await;
    assert_eq!(code(e), ErrorCode::WRONG_RELAY);

    // An operation on another operation's path.
    let bytes = signed_at(&client, &ch.writer, op, now_ms().max(info.min_timestamp_ms)).await;
    let e = client
        .post("/v1/channel/read", bytes, Duration::from_secs(5))
        .await;
    assert_eq!(code(e), ErrorCode::MALFORMED);
}

/// POSTs raw bytes; the HTTP status and the decoded error body.
async fn raw(url: &str, path: &str, body: Vec<u8>) -> (u16, ErrorBody) {
    let response = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (status, ErrorBody::from_bytes(&bytes).unwrap())
}

#[tokio::test]
async fn unknown_and_forbidden_are_indistinguishable() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);
    let info = client.info().await.unwrap();
    let ts = || now_ms().max(info.min_timestamp_ms);
    let append = |write_id| {
        Operation::Append(Append {
            write_id,
            payload: payload(1, 256),
        })
    };
    let revoked = generate_key().unwrap();
    client
        .add_key(
            &ch.owner,
            w,
            KeyGrant {
                key: public_key(&revoked),
                rights: Rights::WRITE,
            },
        )
        .await
        .unwrap();
    client
        .revoke_key(&ch.owner, w, public_key(&revoked))
        .await
        .unwrap();

    let mut answers = Vec::new();
    // Unknown channel, valid signature.
    answers.push(
        raw(
            relay.url(),
            "/v1/channel/append",
            signed_at(&client, &ch.writer, append(WriteId([7; 32])), ts()).await,
        )
        .await,
    );
    // Known channel, key never registered.
    answers.push(
        raw(
            relay.url(),
            "/v1/channel/append",
            signed_at(&client, &generate_key().unwrap(), append(w), ts()).await,
        )
        .await,
    );
    // Known channel, revoked key.
    answers.push(
        raw(
            relay.url(),
            "/v1/channel/append",
            signed_at(&client, &revoked, append(w), ts()).await,
        )
        .await,
    );
    // Known channel, registered key without the right.
    answers.push(
        raw(
            relay.url(),
            "/v1/channel/append",
            signed_at(&client, &ch.reader, append(w), ts()).await,
        )
        .await,
    );
    // Known channel, right key, bad signature.
    let mut forged = signed_at(&client, &ch.writer, append(w), ts()).await;
    let last = forged.len() - 1;
    forged[last] ^= 1;
    answers.push(raw(relay.url(), "/v1/channel/append", forged).await);
    // Unknown read id.
    let read = Operation::Read(Read {
        read_id: ReadId([7; 32]),
        after_seq: 0,
        max_messages: 1,
        wait_ms: 0,
    });
    answers.push(
        raw(
            relay.url(),
            "/v1/channel/read",
            signed_at(&client, &ch.reader, read, ts()).await,
        )
        .await,
    );
    // A known read id used by a key that may only write.
    let read = Operation::Read(Read {
        read_id: r,
        after_seq: 0,
        max_messages: 1,
        wait_ms: 0,
    });
    answers.push(
        raw(
            relay.url(),
            "/v1/channel/read",
            signed_at(&client, &ch.writer, read, ts()).await,
        )
        .await,
    );

    for (status, body) in &answers {
        assert_eq!(*status, 401);
        assert_eq!(body.code, ErrorCode::UNAUTHORIZED);
        assert_eq!(body.message, answers[0].1.message);
        assert_eq!(body.retry_after_ms, 0);
    }
}

/// The next push, or a test failure after five seconds.
async fn next(session: &mut kith_relay_client::Session) -> ServerFrame {
    tokio::time::timeout(Duration::from_secs(5), session.next())
        .await
        .expect("a frame within 5 s")
        .expect("the connection is open")
}

#[tokio::test]
async fn websocket_pushes_in_order_and_ends_on_revocation() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);
    client
        .append(&ch.writer, w, &payload(1, 256))
        .await
        .unwrap();
    client
        .append(&ch.writer, w, &payload(2, 256))
        .await
        .unwrap();

    let mut session = client.session().await.unwrap();
    let sub = session.subscribe(&ch.reader, r, 0).await.unwrap();
    assert_eq!(
        next(&mut session).await,
        ServerFrame::Subscribed { sub, last_seq: 2 }
    );
    let mut seen = Vec::new();
    for _ in 0..2 {
        let ServerFrame::Message { message, .. } = next(&mut session).await else {
            panic!()
        };
        seen.push(message.seq);
    }
    for i in 3..=5 {
        let started = Instant::now();
        client
            .append(&ch.writer, w, &payload(i, 256))
            .await
            .unwrap();
        let ServerFrame::Message { sub: s, message } = next(&mut session).await else {
            panic!()
        };
        assert_eq!(s, sub);
        assert_eq!(message.payload, payload(i, 256));
        assert!(started.elapsed() < Duration::from_secs(1), "pushed at once");
        seen.push(message.seq);
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);

    // A second subscription from a cursor gets only what follows it.
    let mut later = client.session().await.unwrap();
    let sub2 = later.subscribe(&ch.owner, r, 4).await.unwrap();
    assert_eq!(
        next(&mut later).await,
        ServerFrame::Subscribed {
            sub: sub2,
            last_seq: 5
        }
    );
    let ServerFrame::Message { message, .. } = next(&mut later).await else {
        panic!()
    };
    assert_eq!(message.seq, 5);

    // A key without the read right is refused; revoking the reader ends its
    // subscription.
    let refused = later.subscribe(&ch.writer, r, 0).await.unwrap();
    let ServerFrame::Closed { sub, error } = next(&mut later).await else {
        panic!()
    };
    assert_eq!((sub, error.code), (refused, ErrorCode::UNAUTHORIZED));
    client
        .revoke_key(&ch.owner, w, public_key(&ch.reader))
        .await
        .unwrap();
    let ServerFrame::Closed { error, .. } = next(&mut session).await else {
        panic!()
    };
    assert_eq!(error.code, ErrorCode::UNAUTHORIZED);
    client
        .append(&ch.writer, w, &payload(6, 256))
        .await
        .unwrap();
    let ServerFrame::Message { message, .. } = next(&mut later).await else {
        panic!()
    };
    assert_eq!(message.seq, 6, "other subscriptions go on");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), session.next())
            .await
            .is_err(),
        "nothing more reaches the revoked reader"
    );
}

#[tokio::test]
async fn one_websocket_carries_requests_and_many_subscriptions() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let a = channel(&client, ChannelOptions::default()).await;
    let b = channel(&client, ChannelOptions::default()).await;
    let mut session = client.session().await.unwrap();
    let sa = session
        .subscribe(&a.reader, a.created.read_id, 0)
        .await
        .unwrap();
    let sb = session
        .subscribe(&b.reader, b.created.read_id, 0)
        .await
        .unwrap();
    // Pipelined appends over the same socket.
    let (pa, pb) = (payload(1, 1024), payload(2, 1024));
    let (x, y) = tokio::join!(
        session.append(&a.writer, a.created.write_id, &pa),
        session.append(&b.writer, b.created.write_id, &pb),
    );
    assert_eq!((x.unwrap().seq, y.unwrap().seq), (1, 1));
    let mut got = Vec::new();
    while got.len() < 2 {
        if let ServerFrame::Message { sub, message } =
            tokio::time::timeout(Duration::from_secs(5), session.next())
                .await
                .unwrap()
                .unwrap()
        {
            got.push((sub, message.payload[0]));
        }
    }
    got.sort();
    let mut want = vec![(sa, 1), (sb, 2)];
    want.sort();
    assert_eq!(got, want);
    // Another task sends over the same socket while this one waits for pushes.
    let requester = session.requester();
    let (writer, write_id) = (a.writer.clone(), a.created.write_id);
    let sender = tokio::spawn(async move {
        requester
            .append(&writer, write_id, &payload(3, 1024))
            .await
            .map(|a| a.seq)
    });
    let ServerFrame::Message { sub, message } = next(&mut session).await else {
        panic!("expected a message")
    };
    assert_eq!((sub, message.seq, message.payload[0]), (sa, 2, 3));
    assert_eq!(sender.await.unwrap().unwrap(), 2);
    // Errors come back as Failed frames.
    let e = session
        .append(&a.reader, a.created.write_id, &payload(1, 256))
        .await;
    assert_eq!(code(e), ErrorCode::UNAUTHORIZED);
    let read = Operation::Read(Read {
        read_id: a.created.read_id,
        after_seq: 0,
        max_messages: 10,
        wait_ms: 0,
    });
    let body = session.call(&a.reader, read).await.unwrap();
    assert_eq!(Messages::from_bytes(&body).unwrap().items.len(), 2);
    // Subscribe is not a request.
    let sub = Operation::Subscribe(Subscribe {
        read_id: a.created.read_id,
        after_seq: 0,
    });
    assert_eq!(
        code(session.call(&a.reader, sub).await),
        ErrorCode::MALFORMED
    );
}

/// relay.md §8, "Bound keys": a key bound once acts without signatures on
/// its connection only, by its number; everything else about it is
/// checked as for a signed request.
#[tokio::test]
async fn a_bound_key_acts_unsigned_on_its_connection_only() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);
    let session = client.session().await.unwrap();
    let writer = session.bind(&ch.writer).await.unwrap();
    let reader = session.bind(&ch.reader).await.unwrap();
    assert_eq!((writer, reader), (0, 1));
    assert_eq!(session.bind(&ch.writer).await.unwrap(), 0, "bound once");

    let appended = session
        .append_bound(writer, w, &payload(1, 256))
        .await
        .unwrap();
    assert_eq!(appended.seq, 1);
    let read = Operation::Read(Read {
        read_id: r,
        after_seq: 0,
        max_messages: 10,
        wait_ms: 0,
    });
    let body = session.requester().send_bound(reader, &read).await.unwrap();
    assert_eq!(Messages::from_bytes(&body).unwrap().items.len(), 1);

    // Rights are the key's, bound or not.
    let requester = session.requester();
    assert_eq!(
        code(requester.send_bound(reader, &append_op(w, 1)).await),
        ErrorCode::UNAUTHORIZED
    );
    // A number nothing was bound to, here or on another connection.
    assert_eq!(
        code(requester.send_bound(7, &read).await),
        ErrorCode::UNAUTHORIZED
    );
    let other = client.session().await.unwrap();
    assert_eq!(
        code(other.requester().send_bound(writer, &append_op(w, 2)).await),
        ErrorCode::UNAUTHORIZED
    );
    // subscribe and bind are not operations of a Bound frame; bind is not
    // one of HTTP.
    let sub = Operation::Subscribe(Subscribe {
        read_id: r,
        after_seq: 0,
    });
    assert_eq!(
        code(requester.send_bound(reader, &sub).await),
        ErrorCode::MALFORMED
    );
    assert_eq!(
        code(requester.send_bound(reader, &Operation::Bind(Bind)).await),
        ErrorCode::MALFORMED
    );
    let http = client.sign(&ch.writer, Operation::Bind(Bind)).await.unwrap();
    assert_eq!(
        code(
            client
                .post("/v1/channel/append", http, Duration::from_secs(5))
                .await
        ),
        ErrorCode::MALFORMED
    );
    // Revoked: nothing more, though still bound.
    client
        .revoke_key(&ch.owner, w, public_key(&ch.writer))
        .await
        .unwrap();
    assert_eq!(
        code(session.append_bound(writer, w, &payload(3, 256)).await),
        ErrorCode::UNAUTHORIZED
    );
}

fn append_op(write_id: WriteId, fill: u8) -> Operation {
    Operation::Append(Append {
        write_id,
        payload: payload(fill, 256),
    })
}

#[tokio::test]
async fn long_poll_returns_when_a_message_arrives() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);

    let started = Instant::now();
    let empty = client
        .read(&ch.reader, r, 0, 10, Duration::from_millis(400))
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(350), "it waited");

    let writer = {
        let (client, key, url) = (client.clone(), ch.writer.clone(), relay.url().to_owned());
        tokio::spawn(async move {
            wait_for_long_poll(&url).await;
            client.append(&key, w, &payload(5, 256)).await.unwrap();
        })
    };
    let started = Instant::now();
    let got = client
        .read(&ch.reader, r, 0, 10, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got.items.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the append, not the timeout"
    );
    writer.await.unwrap();
}

#[tokio::test]
async fn blobs_small_read_once_and_chunked() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let w = ch.created.write_id;

    // A read-once invitation blob, claimed by a key only the link's holder
    // can derive.
    let claim = generate_key().unwrap();
    let blob = client
        .blob_create(&ch.writer, w, 1024, 1, None, Some(public_key(&claim)))
        .await
        .unwrap();
    client
        .blob_put(&ch.writer, w, blob.blob_id, 0, &payload(3, 1024))
        .await
        .unwrap();
    // Whoever has only the blob id (a link without its fragment, or with a
    // wrong one) is refused and uses nothing up.
    let stranger = generate_key().unwrap();
    assert_eq!(
        code(client.blob_get(blob.blob_id, 0).await),
        ErrorCode::UNAUTHORIZED
    );
    assert_eq!(
        code(client.blob_claim(blob.blob_id, &stranger).await),
        ErrorCode::UNAUTHORIZED
    );
    // Of many racing claims, exactly one wins.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let (c, claim) = (client.clone(), claim.clone());
        racers.push(tokio::spawn(async move {
            c.blob_claim(blob.blob_id, &claim).await
        }));
    }
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(chunk) => {
                won += 1;
                assert_eq!(chunk.data, payload(3, 1024));
            }
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::NOT_FOUND)),
        }
    }
    assert_eq!(won, 1);

    // A chunked attachment.
    let size = CHUNK_SIZE as usize;
    let big = client
        .blob_create(&ch.writer, w, CHUNK_SIZE, 3, None, None)
        .await
        .unwrap();
    for i in 0..3u8 {
        client
            .blob_put(&ch.writer, w, big.blob_id, u32::from(i), &payload(i, size))
            .await
            .unwrap();
    }
    // Re-sending a chunk is idempotent; other bytes conflict; sizes are exact.
    client
        .blob_put(&ch.writer, w, big.blob_id, 1, &payload(1, size))
        .await
        .unwrap();
    assert_eq!(
        code(
            client
                .blob_put(&ch.writer, w, big.blob_id, 1, &payload(9, size))
                .await
        ),
        ErrorCode::CONFLICT
    );
    assert_eq!(
        code(
            client
                .blob_put(&ch.writer, w, big.blob_id, 1, &payload(1, 1024))
                .await
        ),
        ErrorCode::INVALID_ARGUMENT
    );
    assert_eq!(
        code(
            client
                .blob_put(&ch.writer, w, big.blob_id, 3, &payload(1, size))
                .await
        ),
        ErrorCode::INVALID_ARGUMENT
    );
    for i in 0..3u8 {
        let chunk = client.blob_get(big.blob_id, u32::from(i)).await.unwrap();
        assert_eq!((chunk.chunk_count, chunk.data), (3, payload(i, size)));
    }
    // Not read-once: still there.
    client.blob_get(big.blob_id, 0).await.unwrap();
    assert_eq!(
        code(client.blob_get(big.blob_id, 3).await),
        ErrorCode::NOT_FOUND
    );

    // Shape rules: (chunk size, chunk count, read once) → error.
    let rules = [
        (1024, 2, false, ErrorCode::BAD_SIZE),
        (CHUNK_SIZE, 2, true, ErrorCode::INVALID_ARGUMENT),
        (1000, 1, false, ErrorCode::BAD_SIZE),
        (1024, 0, false, ErrorCode::INVALID_ARGUMENT),
    ];
    let claim_key = public_key(&claim);
    for (size, count, once, want) in rules {
        let got = client
            .blob_create(&ch.writer, w, size, count, None, once.then_some(claim_key))
            .await;
        assert_eq!(
            code(got),
            want,
            "{count} chunk(s) of {size}, read once: {once}"
        );
    }
    assert_eq!(
        code(
            client
                .blob_create(&ch.reader, w, 1024, 1, None, None)
                .await
        ),
        ErrorCode::UNAUTHORIZED
    );

    // Delete, and expiry.
    client
        .blob_delete(&ch.writer, w, big.blob_id)
        .await
        .unwrap();
    assert_eq!(
        code(client.blob_get(big.blob_id, 0).await),
        ErrorCode::NOT_FOUND
    );
    let brief = client
        .blob_create(&ch.writer, w, 256, 1, Some(Duration::from_secs(1)), None)
        .await
        .unwrap();
    client
        .blob_put(&ch.writer, w, brief.blob_id, 0, &payload(1, 256))
        .await
        .unwrap();
    client.blob_get(brief.blob_id, 0).await.unwrap();
    eventually("the blob's expiry", Duration::from_secs(30), || async {
        match client.blob_get(brief.blob_id, 0).await {
            Ok(_) => None,
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::NOT_FOUND), "{e}");
                Some(())
            }
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_and_oversized_input_get_clear_errors() {
    let relay = relay(unlimited());
    let url = relay.url().to_owned();

    let (status, body) = raw(&url, "/v1/channel/append", vec![0xff; 100]).await;
    assert_eq!((status, body.code), (400, ErrorCode::MALFORMED));
    assert!(body.message.contains("malformed"), "{}", body.message);
    let (status, body) = raw(&url, "/v1/channel/create", Vec::new()).await;
    assert_eq!((status, body.code), (400, ErrorCode::MALFORMED));
    let (status, _) = raw(&url, "/v1/blob/get", vec![1, 2, 3]).await;
    assert_eq!(status, 400);
    let (status, body) = raw(&url, "/v1/nowhere", Vec::new()).await;
    assert_eq!((status, body.code), (404, ErrorCode::NOT_FOUND));

    // A huge declared body is refused from its headers, before it is sent.
    let addr = url.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            tcp,
            "POST /v1/channel/append HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = tcp.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A chunked body that grows past the limit is cut off as it arrives:
    // the relay answers 413 and stops reading (the sender sees a broken pipe).
    let addr = url.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            tcp,
            "POST /v1/channel/read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..64 {
            if write!(tcp, "{:x}\r\n", chunk.len()).is_err()
                || tcp.write_all(&chunk).is_err()
                || tcp.write_all(b"\r\n").is_err()
            {
                break;
            }
        }
        let mut buf = [0u8; 512];
        let n = tcp.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // The relay is still healthy.
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_garbage_websocket_frame_closes_only_that_connection() {
    use futures_util::{SinkExt, StreamExt};
    let relay = relay(unlimited());
    let ws_url = format!("{}/v1/ws", relay.url().replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        vec![9, 9, 9].into(),
    ))
    .await
    .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(m) = ws.next().await {
            if matches!(
                m,
                Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)
            ) {
                return true;
            }
        }
        true
    })
    .await
    .unwrap();
    assert!(closed);
    let client = client(&relay);
    channel(&client, ChannelOptions::default()).await;
}

#[tokio::test]
async fn status_reports_the_expiry_its_own_use_pushed() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let options = ChannelOptions {
        channel_ttl: Some(Duration::from_secs(4)),
        ..ChannelOptions::default()
    };
    let ch = channel(&client, options).await;
    let created = ch.created.expires_at_ms;
    // Past half the idle TTL, any use pushes the expiry on (§5.1).
    eventually("half the idle TTL", Duration::from_secs(30), || async {
        let now = client.info().await.unwrap().server_time_ms;
        (now > created - 1_900).then_some(())
    })
    .await;
    let w = ChannelRef::Write(ch.created.write_id);
    let status = client.status(&ch.owner, w).await.unwrap();
    assert!(
        status.expires_at_ms > created,
        "{} is not past {created}",
        status.expires_at_ms
    );
    let again = client.status(&ch.owner, w).await.unwrap();
    assert!(again.expires_at_ms >= status.expires_at_ms);
}

#[tokio::test]
async fn every_failure_carries_an_error_body() {
    let relay = relay(unlimited());
    let url = relay.url();
    let decode = |bytes: &[u8]| ErrorBody::from_bytes(bytes).unwrap();
    // Another method on a known path.
    let response = reqwest::get(format!("{url}/v1/channel/append")).await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body = decode(&response.bytes().await.unwrap());
    assert_eq!(body.code, ErrorCode::METHOD_NOT_ALLOWED);
    // The WebSocket path without an upgrade.
    let response = reqwest::get(format!("{url}/v1/ws")).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body = decode(&response.bytes().await.unwrap());
    assert_eq!(body.code, ErrorCode::MALFORMED);
}

#[tokio::test]
async fn websocket_frames_have_the_limits_of_their_paths() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let relay = relay(unlimited());
    let ws_url = format!("{}/v1/ws", relay.url().replace("http://", "ws://"));

    // A request without a payload is at most 8,192 bytes, as over HTTP: a
    // `status` with its operation tag where the relay looks, padded.
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let mut request = vec![1u8; 9_000];
    request[kith_wire::relay::request::OP_TAG_OFFSET] = 8;
    let frame = ClientFrame::Request { id: 7, request }.to_bytes();
    ws.send(Message::Binary(frame.into())).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Binary(bytes) = answer else {
        panic!("{answer:?}")
    };
    let ServerFrame::Failed { id, error } = ServerFrame::from_bytes(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!((id, error.code), (7, ErrorCode::TOO_LARGE));

    // A frame over the WebSocket limit closes the connection with 1009.
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let huge = vec![0u8; kith_wire::relay::request::MAX_SIGNED_REQUEST as usize + 1_000];
    ws.send(Message::Binary(huge.into())).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(Some(frame))) => return Some(u16::from(frame.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(1009));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let relay = relay(
        kith_testkit::RelayOptions::default()
            .env("KITH_RELAY_RATE_LIMIT__PER_IP_PER_SEC", 2)
            .env("KITH_RELAY_RATE_LIMIT__PER_IP_BURST", 5),
    );
    let http = reqwest::Client::new();
    let mut limited = None;
    for _ in 0..20 {
        let r = http
            .post(format!("{}/v1/blob/get", relay.url()))
            .body(vec![0u8; 36])
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the per-IP limit applies");
    assert!(r.headers().contains_key("retry-after"));
    let body = ErrorBody::from_bytes(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body.code, ErrorCode::RATE_LIMITED);
    assert!(body.retry_after_ms > 0);
}

#[tokio::test]
async fn a_key_is_limited_after_its_signature_is_checked() {
    let relay = relay(
        kith_testkit::RelayOptions::default()
            .env("KITH_RELAY_RATE_LIMIT__PER_KEY_PER_SEC", 1)
            .env("KITH_RELAY_RATE_LIMIT__PER_KEY_BURST", 3),
    );
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let w = ch.created.write_id;
    let mut results = Vec::new();
    for i in 0..6 {
        results.push(
            client
                .append(&ch.writer, w, &payload(i, 256))
                .await
                .map(|a| a.seq),
        );
    }
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    let limited = results
        .into_iter()
        .filter_map(Result::err)
        .collect::<Vec<_>>();
    assert!(!limited.is_empty());
    assert!(
        limited
            .iter()
            .all(|e| e.code() == Some(ErrorCode::RATE_LIMITED))
    );
    // Another key on the same channel has its own budget.
    client.append(&ch.owner, w, &payload(9, 256)).await.unwrap();
}

#[tokio::test]
async fn channel_creation_can_require_a_token() {
    let relay = relay(kith_testkit::RelayOptions {
        config: Some("create_tokens = [\"sesame\"]\n[rate_limit]\nenabled = false\n".into()),
        ..Default::default()
    });
    let client = client(&relay);
    assert!(client.info().await.unwrap().create_requires_token);
    let key = generate_key().unwrap();
    assert_eq!(
        code(client.create_channel(&key, ChannelOptions::default()).await),
        ErrorCode::UNAUTHORIZED
    );
    let wrong = ChannelOptions {
        create_token: Some(b"open".to_vec()),
        ..Default::default()
    };
    assert_eq!(
        code(client.create_channel(&key, wrong).await),
        ErrorCode::UNAUTHORIZED
    );
    let right = ChannelOptions {
        create_token: Some(b"sesame".to_vec()),
        ..Default::default()
    };
    client.create_channel(&key, right).await.unwrap();
}

#[tokio::test]
async fn health_metrics_restart_and_graceful_shutdown() {
    let mut relay = relay(unlimited());
    let client = client(&relay);
    let health = reqwest::get(format!("{}/healthz", relay.url()))
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ch = channel(&client, ChannelOptions::default()).await;
    client
        .append(&ch.writer, ch.created.write_id, &payload(1, 256))
        .await
        .unwrap();
    let metrics = reqwest::get(format!("{}/metrics", relay.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("kith_relay_requests_total{op=\"append\",code=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kith_relay_process_resident_memory_bytes"));
    let relay_id = client.info().await.unwrap().relay_id;

    // SIGTERM with a subscription and a long-poll open: both end, exit 0.
    let mut session = client.session().await.unwrap();
    session
        .subscribe(&ch.reader, ch.created.read_id, 1)
        .await
        .unwrap();
    assert!(matches!(
        session.next().await,
        Some(ServerFrame::Subscribed { .. })
    ));
    let poll = {
        let (c, k, r) = (client.clone(), ch.reader.clone(), ch.created.read_id);
        tokio::spawn(async move { c.read(&k, r, 1, 10, Duration::from_secs(20)).await })
    };
    wait_for_long_poll(relay.url()).await;
    let status = tokio::task::spawn_blocking(move || {
        let s = relay.terminate(Duration::from_secs(15));
        (relay, s)
    })
    .await
    .unwrap();
    let (mut relay, status) = status;
    assert!(status.unwrap().success(), "exit status 0 after SIGTERM");
    assert!(
        poll.await.unwrap().unwrap().items.is_empty(),
        "the long-poll was answered"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), session.next())
            .await
            .unwrap()
            .is_none()
    );

    // Restart on the same database: same identity, same data.
    relay.restart().unwrap();
    let client = RelayClient::new(relay.url()).unwrap();
    assert_eq!(client.info().await.unwrap().relay_id, relay_id);
    let read = client
        .read(&ch.reader, ch.created.read_id, 0, 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(read.items.len(), 1);
    // Requests signed before the restart can never be replayed after it:
    // a single process refuses their timestamps (it forgot their nonces); a
    // store shared by several processes remembers the nonces themselves.
    match STORE {
        Store::Sqlite => assert!(client.info().await.unwrap().min_timestamp_ms > now_ms()),
        Store::Postgres => {
            // Nothing to forget on restart, so no minimum (§6), as a CGI
            // relay (nonces in its store too) publishes.
            assert_eq!(client.info().await.unwrap().min_timestamp_ms, 0);
            let op = Operation::Read(Read {
                read_id: ch.created.read_id,
                after_seq: 0,
                max_messages: 1,
                wait_ms: 0,
            });
            let request = signed_at(&client, &ch.reader, op, now_ms()).await;
            let url = relay.url().to_owned();
            let first = reqwest::Client::new()
                .post(format!("{url}/v1/channel/read"))
                .body(request.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(first.status().as_u16(), 200);
            relay.restart().unwrap();
            let (_, refused) = raw(relay.url(), "/v1/channel/read", request).await;
            assert_eq!(refused.code, ErrorCode::REPLAYED);
        }
    }
}
