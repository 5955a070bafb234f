//! Known-answer vectors for the relay protocol (`test-vectors/relay-v1.json`):
//! exact encodings and Ed25519 signatures that a second implementation can
//! check itself against. The test fails if encoding or signing changes;
//! `KITH_WRITE_VECTORS=1 cargo test --test vectors` rewrites the file after
//! an intended change (which must then also change the spec).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ed25519_dalek::{Signer, SigningKey};
use kith_relay_client::{public_key, sign_request};
use kith_wire::Codec;
use kith_wire::relay::push::{ClientFrame, ServerFrame};
use kith_wire::relay::request::*;
use kith_wire::relay::response::*;
use kith_wire::relay::*;
use serde_json::{Value, json};

fn key() -> SigningKey {
    // RFC 8032 §7.1, test 1: a published key, so that anyone can reproduce.
    let seed: [u8; 32] =
        from_hex::<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    SigningKey::from_bytes(&seed)
}

/// A read-once blob's claim key (RFC 8032 §7.1, test 2's key).
fn claim_key() -> SigningKey {
    let seed: [u8; 32] =
        from_hex::<32>("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb").unwrap();
    SigningKey::from_bytes(&seed)
}

fn body(op: Operation) -> RequestBody {
    RequestBody {
        version: PROTOCOL_VERSION,
        relay_id: RelayId([0x11; 32]),
        timestamp_ms: 1_790_000_000_000,
        nonce: Nonce([0x22; 16]),
        signer: public_key(&key()),
        op,
    }
}

/// The fields of an operation as a second implementation would set them:
/// byte strings in hex, `Rights` as their bits, a `ChannelRef` as kind and
/// id.
fn op_input(op: &Operation) -> Value {
    let grant = |g: &KeyGrant| json!({ "key": to_hex(&g.key.0), "rights": g.rights.bits() });
    match op {
        Operation::CreateChannel(c) => json!({
            "message_ttl_secs": c.message_ttl_secs,
            "channel_ttl_secs": c.channel_ttl_secs,
            "grants": c.grants.iter().map(grant).collect::<Vec<_>>(),
            "create_token": to_hex(&c.create_token),
        }),
        Operation::Append(a) => {
            json!({ "write_id": to_hex(&a.write_id.0), "payload": to_hex(&a.payload) })
        }
        Operation::AppendAfter(a) => json!({
            "write_id": to_hex(&a.write_id.0),
            "after_seq": a.after_seq,
            "payload": to_hex(&a.payload),
        }),
        Operation::AppendExpiring(a) => json!({
            "write_id": to_hex(&a.write_id.0),
            "after_seq": a.after_seq,
            "ttl_secs": a.ttl_secs,
            "payload": to_hex(&a.payload),
        }),
        Operation::Read(r) => json!({
            "read_id": to_hex(&r.read_id.0),
            "after_seq": r.after_seq,
            "max_messages": r.max_messages,
            "wait_ms": r.wait_ms,
        }),
        Operation::Ack(a) => json!({ "read_id": to_hex(&a.read_id.0), "seq": a.seq }),
        Operation::AddKey(a) => {
            json!({ "write_id": to_hex(&a.write_id.0), "grant": grant(&a.grant) })
        }
        Operation::RevokeKey(r) => {
            json!({ "write_id": to_hex(&r.write_id.0), "key": to_hex(&r.key.0) })
        }
        Operation::DeleteChannel(d) => json!({ "write_id": to_hex(&d.write_id.0) }),
        Operation::Status(st) => match st.channel {
            ChannelRef::Write(id) => json!({ "channel": { "kind": 1, "id": to_hex(&id.0) } }),
            ChannelRef::Read(id) => json!({ "channel": { "kind": 2, "id": to_hex(&id.0) } }),
        },
        Operation::Subscribe(sub) => {
            json!({ "read_id": to_hex(&sub.read_id.0), "after_seq": sub.after_seq })
        }
        Operation::BlobCreate(b) => json!({
            "write_id": to_hex(&b.write_id.0),
            "chunk_size": b.chunk_size,
            "chunk_count": b.chunk_count,
            "ttl_secs": b.ttl_secs,
            "read_once": b.read_once,
            "claim_key": b.claim_key.map_or_else(String::new, |k| to_hex(&k.0)),
        }),
        Operation::BlobPut(b) => json!({
            "write_id": to_hex(&b.write_id.0),
            "blob_id": to_hex(&b.blob_id.0),
            "index": b.index,
            "data": to_hex(&b.data),
        }),
        Operation::BlobDelete(b) => {
            json!({ "write_id": to_hex(&b.write_id.0), "blob_id": to_hex(&b.blob_id.0) })
        }
        Operation::Bind(Bind) => json!({}),
        Operation::Directory(d) => json!({ "directory": to_hex(&d.to_bytes()) }),
    }
}

fn request_vector(name: &str, op: Operation) -> Value {
    let body = body(op);
    let encoded = body.to_bytes();
    let signed = sign_request(&body, &key());
    json!({
        "name": name,
        "path": body.op.path(),
        "input": {
            "version": body.version,
            "relay_id": to_hex(&body.relay_id.0),
            "timestamp_ms": body.timestamp_ms,
            "nonce": to_hex(&body.nonce.0),
            "signer": to_hex(&body.signer.0),
            "op": op_input(&body.op),
        },
        "body": to_hex(&encoded),
        "signed_message": to_hex(&RequestBody::signed_message(&encoded)),
        "signature": to_hex(&signed[encoded.len()..]),
        "request": to_hex(&signed),
    })
}

fn value_vector<T: Codec>(name: &str, value: &T) -> Value {
    json!({ "name": name, "encoding": to_hex(&value.to_bytes()) })
}

fn vectors() -> Value {
    let w = WriteId([0x33; 32]);
    let r = ReadId([0x44; 32]);
    let other = KeyGrant {
        key: PublicKey(
            from_hex::<32>("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
                .unwrap(),
        ),
        rights: Rights::READ | Rights::WRITE,
    };
    let requests = vec![
        request_vector(
            "create_channel",
            Operation::CreateChannel(CreateChannel {
                message_ttl_secs: 86_400,
                channel_ttl_secs: 0,
                grants: vec![other],
                create_token: b"sesame".to_vec(),
            }),
        ),
        request_vector(
            "append",
            Operation::Append(Append {
                write_id: w,
                payload: vec![0xab; 256],
            }),
        ),
        request_vector(
            "read",
            Operation::Read(Read {
                read_id: r,
                after_seq: 41,
                max_messages: 100,
                wait_ms: 25_000,
            }),
        ),
        request_vector(
            "ack",
            Operation::Ack(Ack {
                read_id: r,
                seq: 42,
            }),
        ),
        request_vector(
            "add_key",
            Operation::AddKey(AddKey {
                write_id: w,
                grant: other,
            }),
        ),
        request_vector(
            "revoke_key",
            Operation::RevokeKey(RevokeKey {
                write_id: w,
                key: other.key,
            }),
        ),
        request_vector(
            "delete_channel",
            Operation::DeleteChannel(DeleteChannel { write_id: w }),
        ),
        request_vector(
            "status",
            Operation::Status(Status {
                channel: ChannelRef::Read(r),
            }),
        ),
        request_vector(
            "subscribe",
            Operation::Subscribe(Subscribe {
                read_id: r,
                after_seq: 7,
            }),
        ),
        request_vector(
            "blob_create",
            Operation::BlobCreate(BlobCreate {
                write_id: w,
                chunk_size: 1024,
                chunk_count: 1,
                ttl_secs: 600,
                read_once: true,
                claim_key: Some(public_key(&claim_key())),
            }),
        ),
        request_vector(
            "blob_put",
            Operation::BlobPut(BlobPut {
                write_id: w,
                blob_id: BlobId([0x55; 32]),
                index: 0,
                data: vec![0xcd; 1024],
            }),
        ),
        request_vector(
            "blob_delete",
            Operation::BlobDelete(BlobDelete {
                write_id: w,
                blob_id: BlobId([0x55; 32]),
            }),
        ),
        request_vector(
            "append_after",
            Operation::AppendAfter(AppendAfter {
                write_id: w,
                after_seq: 41,
                payload: vec![0xab; 256],
            }),
        ),
        request_vector("bind", Operation::Bind(Bind)),
        request_vector(
            "append_expiring",
            Operation::AppendExpiring(AppendExpiring {
                write_id: w,
                after_seq: None,
                ttl_secs: 3600,
                payload: vec![0xab; 256],
            }),
        ),
        request_vector(
            "append_expiring_after",
            Operation::AppendExpiring(AppendExpiring {
                write_id: w,
                after_seq: Some(41),
                ttl_secs: 86_400,
                payload: vec![0xab; 256],
            }),
        ),
    ];
    let limits = kith_relay::server::config::LimitsConfig::default().to_wire();
    let values = vec![
        value_vector(
            "blob_get",
            &BlobGet {
                blob_id: BlobId([0x55; 32]),
                index: 3,
                claim: None,
            },
        ),
        value_vector(
            "blob_get_claimed",
            &BlobGet {
                blob_id: BlobId([0x55; 32]),
                index: 0,
                claim: Some(Signature(
                    claim_key()
                        .sign(&blob_claim_message(
                            &RelayId([0x11; 32]),
                            &BlobId([0x55; 32]),
                        ))
                        .to_bytes(),
                )),
            },
        ),
        value_vector(
            "relay_info",
            &RelayInfo {
                version: PROTOCOL_VERSION,
                relay_id: RelayId([0x11; 32]),
                server_time_ms: 1_790_000_000_123,
                min_timestamp_ms: 1_789_999_990_000,
                create_requires_token: false,
                name: "club relay".into(),
                limits,
            },
        ),
        value_vector(
            "channel_created",
            &ChannelCreated {
                write_id: w,
                read_id: r,
                message_ttl_secs: 86_400,
                channel_ttl_secs: 7_776_000,
                expires_at_ms: 1_797_776_000_000,
            },
        ),
        value_vector(
            "appended",
            &Appended {
                seq: 42,
                received_at_ms: 1_790_000_000_001,
            },
        ),
        value_vector(
            "messages",
            &Messages {
                last_seq: 43,
                items: vec![
                    StoredMessage {
                        seq: 42,
                        received_at_ms: 1_790_000_000_001,
                        payload: vec![1; 256],
                    },
                    StoredMessage {
                        seq: 43,
                        received_at_ms: 1_790_000_000_002,
                        payload: vec![2; 256],
                    },
                ],
            },
        ),
        value_vector("acked", &Acked { acked_seq: 42 }),
        value_vector(
            "channel_status",
            &ChannelStatus {
                last_seq: 43,
                first_seq: 42,
                message_count: 2,
                message_bytes: 512,
                blob_bytes: 1024,
                rights: Rights::ALL,
                acked_seq: 41,
                expires_at_ms: 1_797_776_000_000,
                message_ttl_secs: 86_400,
                channel_ttl_secs: 7_776_000,
                keys: Some(vec![KeyStatus {
                    grant: other,
                    acked_seq: 41,
                }]),
            },
        ),
        value_vector(
            "blob_created",
            &BlobCreated {
                blob_id: BlobId([0x55; 32]),
                expires_at_ms: 1_790_000_600_000,
            },
        ),
        value_vector(
            "blob_chunk",
            &BlobChunk {
                chunk_count: 1,
                data: vec![0xcd; 1024],
            },
        ),
        value_vector(
            "error_body",
            &ErrorBody {
                code: ErrorCode::UNAUTHORIZED,
                server_time_ms: 1_790_000_000_123,
                min_timestamp_ms: 1_789_999_990_000,
                retry_after_ms: 0,
                message: "unauthorized".into(),
            },
        ),
        value_vector(
            "client_frame_subscribe",
            &ClientFrame::Subscribe {
                sub: 1,
                request: vec![0xee; 8],
            },
        ),
        value_vector(
            "client_frame_unsubscribe",
            &ClientFrame::Unsubscribe { sub: 1 },
        ),
        value_vector(
            "client_frame_request",
            &ClientFrame::Request {
                id: 9,
                request: vec![0xee; 8],
            },
        ),
        value_vector(
            "client_frame_bound",
            &ClientFrame::Bound {
                id: 10,
                key_ref: 0,
                operation: Operation::Ack(Ack {
                    read_id: r,
                    seq: 42,
                })
                .to_bytes(),
            },
        ),
        value_vector("key_bound", &KeyBound { key_ref: 3 }),
        value_vector(
            "server_frame_subscribed",
            &ServerFrame::Subscribed {
                sub: 1,
                last_seq: 43,
            },
        ),
        value_vector(
            "server_frame_message",
            &ServerFrame::Message {
                sub: 1,
                message: StoredMessage {
                    seq: 43,
                    received_at_ms: 1_790_000_000_002,
                    payload: vec![2; 256],
                },
            },
        ),
        value_vector(
            "server_frame_closed",
            &ServerFrame::Closed {
                sub: 1,
                error: ErrorBody {
                    code: ErrorCode::UNAUTHORIZED,
                    server_time_ms: 1,
                    min_timestamp_ms: 0,
                    retry_after_ms: 0,
                    message: "unauthorized".into(),
                },
            },
        ),
        value_vector(
            "server_frame_response",
            &ServerFrame::Response {
                id: 9,
                body: Appended {
                    seq: 42,
                    received_at_ms: 1,
                }
                .to_bytes(),
            },
        ),
    ];
    json!({
        "description": "kith relay protocol v1 known-answer vectors (docs/spec/relay.md). Requests are signed with the RFC 8032 test-1 key; 'signed_message' is the signature input, 'request' the HTTP body. Values are hex.",
        "signing_key_seed": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "signing_key_public": to_hex(&public_key(&key()).0),
        "requests": requests,
        "values": values,
        "reject": rejects(),
    })
}

/// Encodings a decoder must refuse (relay.md §2, §4.3 step 2), each made
/// from a valid one with one thing wrong.
fn rejects() -> Value {
    let w = WriteId([0x33; 32]);
    let body_bytes = |op: Operation| body(op).to_bytes();
    let at = OP_TAG_OFFSET;
    let with = |mut bytes: Vec<u8>, i: usize, byte: u8| {
        bytes[i] = byte;
        bytes
    };
    let delete = body_bytes(Operation::DeleteChannel(DeleteChannel { write_id: w }));
    let add_key = body_bytes(Operation::AddKey(AddKey {
        write_id: w,
        grant: KeyGrant {
            key: PublicKey([0x66; 32]),
            rights: Rights::READ,
        },
    }));
    let status = body_bytes(Operation::Status(Status {
        channel: ChannelRef::Write(w),
    }));
    let blob_create = body_bytes(Operation::BlobCreate(BlobCreate {
        write_id: w,
        chunk_size: 1024,
        chunk_count: 1,
        ttl_secs: 600,
        read_once: false,
        claim_key: None,
    }));
    // blob_create: tag, write_id, three u32, then read_once.
    let read_once_at = at + 1 + 32 + 12;
    let mut claim_of_5 = blob_create.clone();
    claim_of_5.truncate(claim_of_5.len() - 4);
    claim_of_5.extend_from_slice(&5u32.to_be_bytes());
    claim_of_5.extend_from_slice(&[0x77; 5]);
    let mut append_too_long = delete[..at].to_vec();
    append_too_long.push(2);
    append_too_long.extend_from_slice(&w.0);
    append_too_long.extend_from_slice(&(MAX_PAYLOAD + 1).to_be_bytes());
    append_too_long.extend_from_slice(&[0; 16]);
    let get = BlobGet {
        blob_id: BlobId([0x55; 32]),
        index: 0,
        claim: None,
    }
    .to_bytes();
    let mut get_trailing = get.clone();
    get_trailing.push(0);
    let mut claim_of_63 = get[..get.len() - 4].to_vec();
    claim_of_63.extend_from_slice(&63u32.to_be_bytes());
    claim_of_63.extend_from_slice(&[0x77; 63]);
    let reject = |name: &str, of: &str, bytes: &[u8], why: &str| json!({ "name": name, "type": of, "encoding": to_hex(bytes), "why": why });
    json!([
        reject(
            "version_2",
            "RequestBody",
            &with(delete.clone(), 0, 2),
            "version other than 1"
        ),
        reject(
            "unknown_operation",
            "RequestBody",
            &with(delete.clone(), at, 99),
            "operation tag 99"
        ),
        reject(
            "rights_bit_3",
            "RequestBody",
            &with(add_key.clone(), add_key.len() - 1, 0x08),
            "Rights with a bit other than the three defined"
        ),
        reject(
            "channel_ref_kind_3",
            "RequestBody",
            &with(status, at + 1, 3),
            "ChannelRef kind 3"
        ),
        reject(
            "bool_2",
            "RequestBody",
            &with(blob_create, read_once_at, 2),
            "a bool other than 0 or 1"
        ),
        reject(
            "claim_key_of_5_bytes",
            "RequestBody",
            &claim_of_5,
            "claim_key neither empty nor 32 bytes"
        ),
        reject(
            "payload_over_its_bound",
            "RequestBody",
            &append_too_long,
            "an opaque length above its bound"
        ),
        reject(
            "trailing_byte",
            "BlobGet",
            &get_trailing,
            "a byte after a complete value"
        ),
        reject(
            "truncated",
            "BlobGet",
            &get[..get.len() - 1],
            "the input ends inside a value"
        ),
        reject(
            "claim_of_63_bytes",
            "BlobGet",
            &claim_of_63,
            "claim neither empty nor 64 bytes"
        ),
    ])
}

#[test]
fn known_answer_vectors() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/relay-v1.json");
    let computed = vectors();
    if std::env::var_os("KITH_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&computed).unwrap() + "\n",
        )
        .unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        stored, computed,
        "encodings or signatures changed; see the module docs"
    );

    // Every encoding to refuse is refused.
    for v in stored["reject"].as_array().unwrap() {
        let bytes = hex::decode(v["encoding"].as_str().unwrap()).unwrap();
        let refused = match v["type"].as_str().unwrap() {
            "RequestBody" => RequestBody::from_bytes(&bytes).is_err(),
            "BlobGet" => BlobGet::from_bytes(&bytes).is_err(),
            other => panic!("no decoder for {other}"),
        };
        assert!(refused, "{} was accepted", v["name"]);
    }

    // The vectors decode back to the same values, and the signatures verify.
    let vk = key().verifying_key();
    for v in stored["requests"].as_array().unwrap() {
        let bytes = hex::decode(v["request"].as_str().unwrap()).unwrap();
        let (_, signed, sig) = SignedRequest::split(&bytes).unwrap();
        vk.verify_strict(
            &RequestBody::signed_message(signed),
            &ed25519_dalek::Signature::from_bytes(&sig.0),
        )
        .unwrap();
    }
}
