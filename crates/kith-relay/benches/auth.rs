//! What authenticating one request costs: signing (client), and the relay's
//! checks, alone and as a whole (`decode + verify`). Reported in
//! `docs/performance.md` as ratios to decoding alone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use kith_relay_client::{public_key, sign_request};
use kith_wire::relay::request::{Append, Operation, RequestBody, SignedRequest};
use kith_wire::relay::{Nonce, PROTOCOL_VERSION, RelayId, WriteId};
use std::hint::black_box;

fn request(key: &SigningKey) -> Vec<u8> {
    let body = RequestBody {
        version: PROTOCOL_VERSION,
        relay_id: RelayId([1; 32]),
        timestamp_ms: 1_790_000_000_000,
        nonce: Nonce([2; 16]),
        signer: public_key(key),
        op: Operation::Append(Append {
            write_id: WriteId([4; 32]),
            payload: vec![5; 1024],
        }),
    };
    sign_request(&body, key)
}

fn auth(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[9; 32]);
    let bytes = request(&key);
    let (_, signed, sig) = SignedRequest::split(&bytes).unwrap();
    let message = RequestBody::signed_message(signed);
    let vk = key.verifying_key();
    let signature = Signature::from_bytes(&sig.0);

    let mut g = c.benchmark_group("request_auth_1KiB");
    g.bench_function("decode", |b| {
        b.iter(|| SignedRequest::split(black_box(&bytes)))
    });
    g.bench_function("sign", |b| b.iter(|| key.sign(black_box(&message))));
    g.bench_function("verify_strict", |b| {
        b.iter(|| vk.verify_strict(black_box(&message), &signature))
    });
    g.bench_function("verify", |b| {
        b.iter(|| vk.verify(black_box(&message), &signature))
    });
    g.bench_function("decode_and_verify", |b| {
        b.iter(|| {
            let (body, signed, sig) = SignedRequest::split(black_box(&bytes)).unwrap();
            let vk = VerifyingKey::from_bytes(&body.signer.0).unwrap();
            vk.verify_strict(
                &RequestBody::signed_message(signed),
                &Signature::from_bytes(&sig.0),
            )
        })
    });
    g.finish();

    // Batch verification: what one signature costs inside a batch of n.
    let mut g = c.benchmark_group("verify_batch_per_signature");
    for n in [1usize, 4, 16, 64] {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let msgs: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| {
                let b = request(k);
                let (_, signed, _) = SignedRequest::split(&b).unwrap();
                RequestBody::signed_message(signed)
            })
            .collect();
        let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let vks: Vec<VerifyingKey> = keys.iter().map(|k| k.verifying_key()).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        g.throughput(criterion::Throughput::Elements(n as u64));
        g.bench_function(format!("n={n}"), |b| {
            b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &sigs, &vks))
        });
    }
    g.finish();
}

criterion_group!(benches, auth);
criterion_main!(benches);
