//! Property tests: every wire type survives encode → decode unchanged and
//! re-encodes to the same bytes; every decoder returns (never panics) on
//! arbitrary input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kith_wire::Codec;
use kith_wire::conv::{
    ChannelGrant, ChannelMove, CommitKeys, ContactRequest, Content, Envelope, GroupInvitation,
    GroupState, GroupStateRef, GroupWelcome, IntroStep, Introduction, Invitation, JoinRequest,
    LinkProof, MAX_COMMIT_CHUNKS, MAX_STATE_CHUNKS, MemberEntry, MlsBlobRef, PairFrame,
};
use kith_wire::dir::{
    Attestation, DirectoryInfo, DirectoryKey, DirectoryOp, DirectoryRequest, Entry, SearchResults,
};
use kith_wire::relay::push::{ClientFrame, ServerFrame};
use kith_wire::relay::request::*;
use kith_wire::relay::response::*;
use kith_wire::relay::*;
use kith_wire::relay::{MAX_PAYLOAD, SIZE_BUCKETS};
use proptest::collection::vec;
use proptest::prelude::*;

fn arr32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn rights() -> impl Strategy<Value = Rights> {
    (1u8..=7).prop_map(|b| Rights::from_bits(b).unwrap())
}

fn grant() -> impl Strategy<Value = KeyGrant> {
    (arr32(), rights()).prop_map(|(k, rights)| KeyGrant {
        key: PublicKey(k),
        rights,
    })
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..2048)
}

fn channel_ref() -> impl Strategy<Value = ChannelRef> {
    prop_oneof![
        arr32().prop_map(|a| ChannelRef::Write(WriteId(a))),
        arr32().prop_map(|a| ChannelRef::Read(ReadId(a))),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u32>(),
            vec(grant(), 0..5),
            vec(any::<u8>(), 0..256)
        )
            .prop_map(|(m, c, grants, create_token)| Operation::CreateChannel(
                CreateChannel {
                    message_ttl_secs: m,
                    channel_ttl_secs: c,
                    grants,
                    create_token,
                }
            )),
        (arr32(), payload()).prop_map(|(w, payload)| Operation::Append(Append {
            write_id: WriteId(w),
            payload
        })),
        (arr32(), any::<u64>(), any::<u16>(), any::<u32>()).prop_map(|(r, a, m, wait)| {
            Operation::Read(Read {
                read_id: ReadId(r),
                after_seq: a,
                max_messages: m,
                wait_ms: wait,
            })
        }),
        (arr32(), any::<u64>()).prop_map(|(r, seq)| Operation::Ack(Ack {
            read_id: ReadId(r),
            seq
        })),
        (arr32(), grant()).prop_map(|(w, grant)| Operation::AddKey(AddKey {
            write_id: WriteId(w),
            grant
        })),
        (arr32(), arr32()).prop_map(|(w, k)| Operation::RevokeKey(RevokeKey {
            write_id: WriteId(w),
            key: PublicKey(k)
        })),
        arr32().prop_map(|w| Operation::DeleteChannel(DeleteChannel {
            write_id: WriteId(w)
        })),
        channel_ref().prop_map(|channel| Operation::Status(Status { channel })),
        (arr32(), any::<u64>()).prop_map(|(r, a)| Operation::Subscribe(Subscribe {
            read_id: ReadId(r),
            after_seq: a
        })),
        (
            arr32(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            proptest::option::of(arr32())
        )
            .prop_map(|(w, chunk_size, chunk_count, ttl_secs, read_once, claim)| {
                Operation::BlobCreate(BlobCreate {
                    write_id: WriteId(w),
                    chunk_size,
                    chunk_count,
                    ttl_secs,
                    read_once,
                    claim_key: claim.map(PublicKey),
                })
            }),
        (arr32(), arr32(), any::<u32>(), payload()).prop_map(|(w, b, index, data)| {
            Operation::BlobPut(BlobPut {
                write_id: WriteId(w),
                blob_id: BlobId(b),
                index,
                data,
            })
        }),
        (arr32(), arr32()).prop_map(|(w, b)| Operation::BlobDelete(BlobDelete {
            write_id: WriteId(w),
            blob_id: BlobId(b)
        })),
        Just(Operation::Bind(Bind)),
        directory_request().prop_map(Operation::Directory),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        ".{1,40}",
        ".{0,100}",
        "https://[a-z.]{1,20}/a/[A-Za-z0-9_-]{1,60}",
    )
        .prop_map(|(display_name, text, address)| Entry {
            display_name,
            text,
            address,
        })
}

fn directory_request() -> impl Strategy<Value = DirectoryRequest> {
    (
        "[a-z0-9-]{1,64}",
        prop_oneof![
            arr32().prop_map(|secret| DirectoryOp::Enrol { secret }),
            entry().prop_map(DirectoryOp::Publish),
            Just(DirectoryOp::Unpublish),
            ".{0,60}".prop_map(|query| DirectoryOp::Search { query }),
            Just(DirectoryOp::Leave),
        ],
    )
        .prop_map(|(directory, op)| DirectoryRequest { directory, op })
}

fn directory_info() -> impl Strategy<Value = DirectoryInfo> {
    (
        "[a-z0-9-]{1,64}",
        any::<bool>(),
        arr32(),
        vec((arr32(), any::<u64>(), any::<u64>(), sig()), 1..4),
        vec(arr32(), 0..4),
        any::<u64>(),
        sig(),
    )
        .prop_map(
            |(name, members_only, root, keys, revoked, issued_ms, root_signature)| DirectoryInfo {
                name,
                members_only,
                root,
                keys: keys
                    .into_iter()
                    .map(|(key, from, until, rs)| DirectoryKey {
                        key,
                        valid_from_ms: from,
                        valid_until_ms: until,
                        root_signature: rs,
                    })
                    .collect(),
                revoked,
                issued_ms,
                root_signature,
            },
        )
}

fn request_body() -> impl Strategy<Value = RequestBody> {
    (
        arr32(),
        any::<u64>(),
        any::<[u8; 16]>(),
        arr32(),
        operation(),
    )
        .prop_map(|(relay, ts, nonce, signer, op)| RequestBody {
            version: PROTOCOL_VERSION,
            relay_id: RelayId(relay),
            timestamp_ms: ts,
            nonce: Nonce(nonce),
            signer: PublicKey(signer),
            op,
        })
}

fn signed_request() -> impl Strategy<Value = SignedRequest> {
    (request_body(), vec(any::<u8>(), 64)).prop_map(|(body, sig)| SignedRequest {
        body,
        signature: Signature(sig.try_into().unwrap()),
    })
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u32>(),
        ),
        (any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(|(a, b, c, d)| Limits {
            max_payload: a.0,
            max_channel_messages: a.1,
            max_channel_bytes: a.2,
            max_channel_blob_bytes: a.3,
            max_channel_keys: a.4,
            default_message_ttl_secs: b.0,
            max_message_ttl_secs: b.1,
            default_channel_ttl_secs: b.2,
            max_channel_ttl_secs: b.3,
            default_blob_ttl_secs: b.4,
            max_blob_ttl_secs: c.0,
            max_blob_chunks: c.1,
            max_wait_ms: c.2,
            max_read_messages: c.3,
            max_read_bytes: c.4,
            timestamp_max_age_ms: d.0,
            timestamp_max_future_ms: d.1,
            max_subscriptions: d.2,
        })
}

fn relay_info() -> impl Strategy<Value = RelayInfo> {
    (
        arr32(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        "[a-z ]{0,40}",
        limits(),
    )
        .prop_map(|(id, t, m, tok, name, limits)| RelayInfo {
            version: PROTOCOL_VERSION,
            relay_id: RelayId(id),
            server_time_ms: t,
            min_timestamp_ms: m,
            create_requires_token: tok,
            name,
            limits,
        })
}

fn stored_message() -> impl Strategy<Value = StoredMessage> {
    (any::<u64>(), any::<u64>(), payload()).prop_map(|(seq, received_at_ms, payload)| {
        StoredMessage {
            seq,
            received_at_ms,
            payload,
        }
    })
}

fn error_body() -> impl Strategy<Value = ErrorBody> {
    (
        any::<u16>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        ".{0,100}",
    )
        .prop_map(|(code, t, m, r, message)| ErrorBody {
            code: ErrorCode(code),
            server_time_ms: t,
            min_timestamp_ms: m,
            retry_after_ms: r,
            message,
        })
}

fn channel_status() -> impl Strategy<Value = ChannelStatus> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (
            rights(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
        ),
        proptest::option::of(vec(
            (grant(), any::<u64>()).prop_map(|(grant, acked_seq)| KeyStatus { grant, acked_seq }),
            0..5,
        )),
    )
        .prop_map(|(a, b, keys)| ChannelStatus {
            last_seq: a.0,
            first_seq: a.1,
            message_count: a.2,
            message_bytes: a.3,
            blob_bytes: a.4,
            rights: b.0,
            acked_seq: b.1,
            expires_at_ms: b.2,
            message_ttl_secs: b.3,
            channel_ttl_secs: b.4,
            keys,
        })
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (any::<u32>(), vec(any::<u8>(), 0..300))
            .prop_map(|(sub, request)| ClientFrame::Subscribe { sub, request }),
        any::<u32>().prop_map(|sub| ClientFrame::Unsubscribe { sub }),
        (any::<u32>(), vec(any::<u8>(), 0..2048))
            .prop_map(|(id, request)| ClientFrame::Request { id, request }),
        (any::<u32>(), any::<u32>(), vec(any::<u8>(), 0..2048)).prop_map(
            |(id, key_ref, operation)| ClientFrame::Bound {
                id,
                key_ref,
                operation
            }
        ),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (any::<u32>(), any::<u64>())
            .prop_map(|(sub, last_seq)| ServerFrame::Subscribed { sub, last_seq }),
        (any::<u32>(), stored_message())
            .prop_map(|(sub, message)| ServerFrame::Message { sub, message }),
        (any::<u32>(), error_body()).prop_map(|(sub, error)| ServerFrame::Closed { sub, error }),
        (any::<u32>(), vec(any::<u8>(), 0..2048))
            .prop_map(|(id, body)| ServerFrame::Response { id, body }),
        (any::<u32>(), error_body()).prop_map(|(id, error)| ServerFrame::Failed { id, error }),
    ]
}

fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = v.to_bytes();
    let decoded = T::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, v);
    prop_assert_eq!(decoded.to_bytes(), bytes);
    Ok(())
}

fn channel_grant() -> impl Strategy<Value = ChannelGrant> {
    ("[a-z:/.0-9]{1,40}", arr32(), arr32(), arr32(), arr32()).prop_map(
        |(relay_url, i, w, r, key)| ChannelGrant {
            relay_url,
            relay_id: RelayId(i),
            write_id: WriteId(w),
            read_id: ReadId(r),
            key,
        },
    )
}

fn envelope() -> impl Strategy<Value = Envelope> {
    prop_oneof![
        payload().prop_map(Envelope::Welcome),
        payload().prop_map(Envelope::Mls),
        payload().prop_map(Envelope::JoinRequest),
        payload().prop_map(Envelope::GroupWelcome),
        mls_blob_ref().prop_map(Envelope::MlsBlob),
        payload().prop_map(Envelope::ContactRequest),
    ]
}

fn mls_blob_ref() -> impl Strategy<Value = MlsBlobRef> {
    (
        arr32(),
        prop_oneof![
            (0..6usize, Just(1u32)).prop_map(|(b, n)| (SIZE_BUCKETS[b], n)),
            (2..=MAX_COMMIT_CHUNKS).prop_map(|n| (MAX_PAYLOAD, n)),
        ],
        any::<u32>(),
        arr32(),
    )
        .prop_map(|(blob_id, (chunk_size, chunk_count), length, sha256)| {
            let room = u64::from(chunk_size) * u64::from(chunk_count);
            let length = u32::try_from(1 + u64::from(length) % room).unwrap();
            MlsBlobRef {
                blob_id,
                chunk_size,
                chunk_count,
                length,
                sha256,
            }
        })
}

fn invitation() -> impl Strategy<Value = Invitation> {
    (
        channel_grant(),
        vec(any::<u8>(), 1..600),
        ".{0,30}",
        any::<u64>(),
    )
        .prop_map(
            |(channel, key_package, display_name, expires_at_ms)| Invitation {
                channel,
                key_package,
                display_name,
                expires_at_ms,
            },
        )
}

fn contact_request() -> impl Strategy<Value = ContactRequest> {
    (
        channel_grant(),
        vec(any::<u8>(), 1..600),
        ".{0,30}",
        ".{0,100}",
        any::<u64>(),
    )
        .prop_map(
            |(channel, key_package, display_name, note, expires_at_ms)| ContactRequest {
                channel,
                key_package,
                display_name,
                note,
                expires_at_ms,
            },
        )
}

fn sig() -> impl Strategy<Value = [u8; 64]> {
    (arr32(), arr32()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        s
    })
}

fn attestation() -> impl Strategy<Value = Attestation> {
    (
        "[a-z0-9-]{1,64}",
        arr32(),
        (arr32(), any::<u64>(), any::<u64>(), sig()),
        arr32(),
        ".{1,60}",
        (any::<u64>(), any::<u64>(), sig()),
    )
        .prop_map(
            |(directory, root, (key, from, until, rs), member, statement, (f, u, signature))| {
                Attestation {
                    directory,
                    root,
                    signing: DirectoryKey {
                        key,
                        valid_from_ms: from,
                        valid_until_ms: until,
                        root_signature: rs,
                    },
                    member,
                    statement,
                    valid_from_ms: f,
                    valid_until_ms: u,
                    signature,
                }
            },
        )
}

fn pair_frame() -> impl Strategy<Value = PairFrame> {
    prop_oneof![
        (any::<[u8; 16]>(), any::<u64>(), ".{0,200}").prop_map(|(message_id, sent_at_ms, text)| {
            PairFrame::Text {
                message_id,
                sent_at_ms,
                text,
            }
        }),
        ".{0,40}".prop_map(|display_name| PairFrame::Profile { display_name }),
        channel_grant().prop_map(PairFrame::Channel),
        vec(any::<u8>(), 1..300).prop_map(PairFrame::KeyPackage),
        group_welcome().prop_map(PairFrame::GroupInvite),
        channel_move().prop_map(PairFrame::Move),
        introduction().prop_map(PairFrame::Introduction),
        (
            any::<[u8; 16]>(),
            any::<u64>(),
            any::<u16>(),
            any::<bool>(),
            ".{0,80}",
            vec(any::<u8>(), 0..300)
        )
            .prop_map(
                |(message_id, sent_at_ms, content_type, critical, fallback, body)| {
                    PairFrame::Content(Content {
                        message_id,
                        sent_at_ms,
                        content_type,
                        critical,
                        fallback,
                        body,
                    })
                }
            ),
        vec(arr32(), 0..40).prop_map(PairFrame::MemberTags),
        (vec("[a-z/.+-]{1,40}", 0..8), vec("[a-z]{1,20}", 0..8)).prop_map(
            |(media_types, features)| PairFrame::Capabilities {
                media_types,
                features
            }
        ),
        (arr32(), arr32(), any::<u64>(), arr32(), arr32()).prop_map(|(a, b, at, s1, s2)| {
            let mut signature_a = [0u8; 64];
            signature_a[..32].copy_from_slice(&s1);
            let mut signature_b = [0u8; 64];
            signature_b[32..].copy_from_slice(&s2);
            PairFrame::Link(LinkProof {
                key_a: a,
                key_b: b,
                made_at_ms: at,
                signature_a,
                signature_b,
            })
        }),
        attestation().prop_map(PairFrame::Attestation),
    ]
}

fn channel_move() -> impl Strategy<Value = ChannelMove> {
    (
        "[a-z:/.0-9]{1,40}",
        arr32(),
        arr32(),
        arr32(),
        proptest::option::of(arr32()),
        vec(arr32(), 0..4),
    )
        .prop_map(|(relay_url, r, w, rd, key, retire)| ChannelMove {
            relay_url,
            relay_id: RelayId(r),
            write_id: WriteId(w),
            read_id: ReadId(rd),
            key,
            retire: retire.into_iter().map(WriteId).collect(),
        })
}

fn introduction() -> impl Strategy<Value = Introduction> {
    let step = prop_oneof![
        (".{0,30}", ".{0,100}", any::<bool>(), any::<u64>()).prop_map(
            |(peer_name, note, creates, expires_at_ms)| IntroStep::Offer {
                peer_name,
                note,
                creates,
                expires_at_ms
            }
        ),
        (vec(any::<u8>(), 0..300), vec(arr32(), 0..5))
            .prop_map(|(key_package, tags)| IntroStep::Answer { key_package, tags }),
        (vec(any::<u8>(), 1..300), vec(arr32(), 0..5)).prop_map(|(peer_key_package, peer_tags)| {
            IntroStep::Matched {
                peer_key_package,
                peer_tags,
            }
        }),
        (vec(any::<u8>(), 1..300), vec(any::<u8>(), 1..300)).prop_map(
            |(welcome, sealed_channel)| IntroStep::Welcome {
                welcome,
                sealed_channel
            }
        ),
        Just(IntroStep::Closed),
    ];
    (any::<[u8; 16]>(), step).prop_map(|(intro_id, step)| Introduction { intro_id, step })
}

fn group_state_ref() -> impl Strategy<Value = GroupStateRef> {
    (
        arr32(),
        prop_oneof![
            (0..6usize, Just(1u32)).prop_map(|(b, n)| (SIZE_BUCKETS[b], n)),
            (2..MAX_STATE_CHUNKS).prop_map(|n| (MAX_PAYLOAD, n)),
        ],
        any::<u32>(),
        arr32(),
    )
        .prop_map(|(blob_id, (chunk_size, chunk_count), length, key)| {
            let room = u64::from(chunk_size) * u64::from(chunk_count);
            let length = u32::try_from(1 + u64::from(length) % room).unwrap();
            GroupStateRef {
                blob_id,
                chunk_size,
                chunk_count,
                length,
                key,
            }
        })
}

fn group_welcome() -> impl Strategy<Value = GroupWelcome> {
    (
        ".{0,30}",
        channel_grant(),
        vec(any::<u8>(), 1..300),
        group_state_ref(),
        any::<u64>(),
    )
        .prop_map(
            |(group_name, channel, welcome, state, from_seq)| GroupWelcome {
                group_name,
                channel,
                welcome,
                state,
                from_seq,
            },
        )
}

fn group_state() -> impl Strategy<Value = GroupState> {
    (vec(any::<u8>(), 1..300), vec(member_entry(), 0..4)).prop_map(|(ratchet_tree, roster)| {
        GroupState {
            ratchet_tree,
            roster,
        }
    })
}

fn member_entry() -> impl Strategy<Value = MemberEntry> {
    (
        vec(any::<u8>(), 1..64),
        ".{0,20}",
        arr32(),
        vec(arr32(), 0..20),
    )
        .prop_map(
            |(identity_key, display_name, capability_key, tags)| MemberEntry {
                identity_key,
                display_name,
                capability_key,
                tags,
            },
        )
}

fn group_invitation() -> impl Strategy<Value = GroupInvitation> {
    (channel_grant(), ".{0,30}", ".{0,30}", any::<u64>()).prop_map(
        |(inbox, group_name, inviter_name, expires_at_ms)| GroupInvitation {
            inbox,
            group_name,
            inviter_name,
            expires_at_ms,
        },
    )
}

fn join_request() -> impl Strategy<Value = JoinRequest> {
    (vec(any::<u8>(), 1..300), ".{0,30}", vec(arr32(), 0..20)).prop_map(
        |(key_package, display_name, tags)| JoinRequest {
            key_package,
            display_name,
            tags,
        },
    )
}

fn commit_keys() -> impl Strategy<Value = CommitKeys> {
    vec(member_entry(), 0..5).prop_map(|added| CommitKeys { added })
}

proptest! {
    #[test]
    fn envelope_round_trips(v in envelope()) { round_trip(&v)?; }

    #[test]
    fn invitation_round_trips(v in invitation()) { round_trip(&v)?; }

    #[test]
    fn contact_request_round_trips(v in contact_request()) { round_trip(&v)?; }

    #[test]
    fn attestation_round_trips(v in attestation()) { round_trip(&v)?; }

    #[test]
    fn directory_info_round_trips(v in directory_info()) { round_trip(&v)?; }

    #[test]
    fn search_results_round_trip(items in vec(entry(), 0..5)) {
        round_trip(&SearchResults { items })?;
    }

    #[test]
    fn pair_frame_round_trips(v in pair_frame()) { round_trip(&v)?; }

    #[test]
    fn group_welcome_round_trips(v in group_welcome()) { round_trip(&v)?; }

    #[test]
    fn group_state_round_trips(v in group_state()) { round_trip(&v)?; }

    #[test]
    fn group_invitation_round_trips(v in group_invitation()) { round_trip(&v)?; }

    #[test]
    fn join_request_round_trips(v in join_request()) { round_trip(&v)?; }

    #[test]
    fn commit_keys_round_trip(v in commit_keys()) { round_trip(&v)?; }

    #[test]
    fn operation_round_trips(v in operation()) { round_trip(&v)?; }

    #[test]
    fn request_body_round_trips(v in request_body()) { round_trip(&v)?; }

    #[test]
    fn signed_request_round_trips_and_splits(v in signed_request()) {
        round_trip(&v)?;
        let bytes = v.to_bytes();
        let (body, signed, sig) = SignedRequest::split(&bytes).unwrap();
        prop_assert_eq!(&body, &v.body);
        prop_assert_eq!(signed, &v.body.to_bytes()[..]);
        prop_assert_eq!(sig, v.signature);
    }

    #[test]
    fn blob_get_round_trips(
        b in arr32(),
        index in any::<u32>(),
        claim in proptest::option::of(proptest::collection::vec(any::<u8>(), 64)),
    ) {
        let claim = claim.map(|c| Signature(c.try_into().unwrap()));
        round_trip(&BlobGet { blob_id: BlobId(b), index, claim })?;
    }

    #[test]
    fn relay_info_round_trips(v in relay_info()) { round_trip(&v)?; }

    #[test]
    fn channel_created_round_trips(w in arr32(), r in arr32(), m in any::<u32>(), c in any::<u32>(), e in any::<u64>()) {
        round_trip(&ChannelCreated { write_id: WriteId(w), read_id: ReadId(r), message_ttl_secs: m, channel_ttl_secs: c, expires_at_ms: e })?;
    }

    #[test]
    fn appended_round_trips(seq in any::<u64>(), at in any::<u64>()) {
        round_trip(&Appended { seq, received_at_ms: at })?;
    }

    #[test]
    fn messages_round_trip(last_seq in any::<u64>(), items in vec(stored_message(), 0..8)) {
        round_trip(&Messages { last_seq, items })?;
    }

    #[test]
    fn acked_round_trips(acked_seq in any::<u64>()) { round_trip(&Acked { acked_seq })?; }

    #[test]
    fn key_bound_round_trips(key_ref in any::<u32>()) { round_trip(&KeyBound { key_ref })?; }

    #[test]
    fn channel_status_round_trips(v in channel_status()) { round_trip(&v)?; }

    #[test]
    fn blob_created_round_trips(b in arr32(), e in any::<u64>()) {
        round_trip(&BlobCreated { blob_id: BlobId(b), expires_at_ms: e })?;
    }

    #[test]
    fn blob_chunk_round_trips(chunk_count in any::<u32>(), data in payload()) {
        round_trip(&BlobChunk { chunk_count, data })?;
    }

    #[test]
    fn error_body_round_trips(v in error_body()) { round_trip(&v)?; }

    #[test]
    fn client_frame_round_trips(v in client_frame()) { round_trip(&v)?; }

    #[test]
    fn server_frame_round_trips(v in server_frame()) { round_trip(&v)?; }

    /// Every decoder on arbitrary bytes returns, and what it accepts
    /// re-encodes to exactly the input (canonical encoding).
    #[test]
    fn decoders_are_total_and_canonical(bytes in vec(any::<u8>(), 0..512)) {
        fn check<T: Codec>(bytes: &[u8]) -> Result<(), TestCaseError> {
            if let Ok(v) = T::from_bytes(bytes) {
                prop_assert_eq!(v.to_bytes(), bytes);
            }
            Ok(())
        }
        check::<SignedRequest>(&bytes)?;
        check::<RequestBody>(&bytes)?;
        check::<Operation>(&bytes)?;
        check::<BlobGet>(&bytes)?;
        check::<RelayInfo>(&bytes)?;
        check::<ChannelCreated>(&bytes)?;
        check::<Appended>(&bytes)?;
        check::<Messages>(&bytes)?;
        check::<Acked>(&bytes)?;
        check::<ChannelStatus>(&bytes)?;
        check::<BlobCreated>(&bytes)?;
        check::<BlobChunk>(&bytes)?;
        check::<ErrorBody>(&bytes)?;
        check::<ClientFrame>(&bytes)?;
        check::<ServerFrame>(&bytes)?;
        check::<Envelope>(&bytes)?;
        check::<Invitation>(&bytes)?;
        check::<ContactRequest>(&bytes)?;
        check::<Attestation>(&bytes)?;
        check::<PairFrame>(&bytes)?;
        check::<GroupWelcome>(&bytes)?;
        check::<GroupState>(&bytes)?;
        check::<GroupInvitation>(&bytes)?;
        check::<JoinRequest>(&bytes)?;
        check::<CommitKeys>(&bytes)?;
        let _ = SignedRequest::split(&bytes);
    }

    /// Mutating one byte of a valid request never panics a decoder.
    #[test]
    fn mutated_requests_never_panic(v in signed_request(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = v.to_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        let _ = SignedRequest::split(&bytes);
        let _ = SignedRequest::from_bytes(&bytes);
    }
}
