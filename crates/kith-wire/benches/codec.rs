//! Encode/decode cost of the hot wire types. Reported in
//! `docs/performance.md` as ratios: decoding a 1 KiB append against copying
//! 1 KiB (the floor any decoder must pay).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kith_wire::Codec;
use kith_wire::relay::request::{Append, Operation, RequestBody, SignedRequest};
use kith_wire::relay::response::{Messages, StoredMessage};
use kith_wire::relay::{Nonce, PROTOCOL_VERSION, PublicKey, RelayId, Signature, WriteId};
use std::hint::black_box;

fn append_request(size: usize) -> SignedRequest {
    SignedRequest {
        body: RequestBody {
            version: PROTOCOL_VERSION,
            relay_id: RelayId([1; 32]),
            timestamp_ms: 1_790_000_000_000,
            nonce: Nonce([2; 16]),
            signer: PublicKey([3; 32]),
            op: Operation::Append(Append {
                write_id: WriteId([4; 32]),
                payload: vec![5; size],
            }),
        },
        signature: Signature([6; 64]),
    }
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_request");
    for size in [256usize, 1024, 16_384] {
        let req = append_request(size);
        let bytes = req.to_bytes();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", size), &req, |b, r| {
            b.iter(|| black_box(r).to_bytes())
        });
        group.bench_with_input(
            BenchmarkId::new("split_decode", size),
            &bytes,
            |b, bytes| b.iter(|| SignedRequest::split(black_box(bytes)).map(|(body, _, _)| body)),
        );
        group.bench_with_input(
            BenchmarkId::new("copy_baseline", size),
            &bytes,
            |b, bytes| b.iter(|| black_box(bytes).to_vec()),
        );
    }
    group.finish();

    let page = Messages {
        last_seq: 100,
        items: (1..=100)
            .map(|seq| StoredMessage {
                seq,
                received_at_ms: 1_790_000_000_000,
                payload: vec![7; 1024],
            })
            .collect(),
    };
    let bytes = page.to_bytes();
    let mut group = c.benchmark_group("messages_100x1KiB");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| black_box(&page).to_bytes()));
    group.bench_function("decode", |b| {
        b.iter(|| Messages::from_bytes(black_box(&bytes)))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
