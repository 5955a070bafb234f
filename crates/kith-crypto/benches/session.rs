//! 1:1 session costs: set-up, and encrypt+decrypt with the state saved after
//! each message (as kith-core does). docs/performance.md compares them with
//! the same operations in bench/mls-compare (state kept, not encoded).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kith_crypto::mls::{GroupSnapshot, IdentityKey, Incoming, Session, key_package};
use kith_crypto::padding::{pad, unpad};
use kith_wire::relay::SIZE_BUCKETS;

fn pair() -> (Session, Session) {
    let alex = IdentityKey::generate().unwrap();
    let blair = IdentityKey::generate().unwrap();
    let (kp, pending) = key_package(&alex).unwrap();
    let (b, welcome) = Session::create(&blair, &[&kp]).unwrap();
    (Session::join(&alex, &pending, &welcome).unwrap(), b)
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("pair");
    g.bench_function("setup_invite_accept_join", |b| {
        b.iter(|| {
            let alex = IdentityKey::generate().unwrap();
            let blair = IdentityKey::generate().unwrap();
            let (kp, pending) = key_package(&alex).unwrap();
            let (mut bs, welcome) = Session::create(&blair, &[&kp]).unwrap();
            let mut a = Session::join(&alex, &pending, &welcome).unwrap();
            (a.snapshot().unwrap(), bs.snapshot().unwrap())
        })
    });
    for size in [256usize, 4096] {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("encrypt_decrypt_{size}B_saving_state"), |b| {
            let (mut a, mut bs) = pair();
            let plaintext = vec![7u8; size];
            b.iter(|| {
                let padded = pad(&bs.encrypt(&plaintext).unwrap(), &SIZE_BUCKETS).unwrap();
                let _ = bs.snapshot().unwrap().to_bytes();
                let Incoming::Application { plaintext, .. } =
                    a.process(unpad(&padded).unwrap()).unwrap()
                else {
                    panic!()
                };
                let _ = a.snapshot().unwrap().to_bytes();
                plaintext
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("load_from_snapshot", |b| {
        let (mut a, _) = pair();
        let bytes = a.snapshot().unwrap().to_bytes();
        let key = IdentityKey::generate().unwrap();
        b.iter_batched(
            || GroupSnapshot::from_bytes(&bytes).unwrap(),
            |s| Session::load(&key, s).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(session, benches);
criterion_main!(session);
