//! `cargo bench` here prints one line per (operation, crate); the report in
//! docs/performance.md divides each openmls time by the mls-rs time.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mls_compare::{Member, PAYLOAD, open::OpenMls, rs::MlsRs};

/// A pair in one group, as a 1:1 conversation is.
fn pair<M: Member>() -> (M, M) {
    let mut alex = M::new("alex");
    let mut blair = M::new("blair");
    alex.create_group();
    let kp = blair.key_package();
    let (_, welcome) = alex.add(&[kp]);
    blair.join(&welcome);
    (alex, blair)
}

/// A group of `n` created by one commit; the second member has joined.
fn group<M: Member>(n: usize) -> (M, M) {
    let mut creator = M::new("m0");
    creator.create_group();
    let mut second = M::new("m1");
    let mut kps = vec![second.key_package()];
    for i in 2..n {
        kps.push(M::new(&format!("m{i}")).key_package());
    }
    let (_, welcome) = creator.add(&kps);
    second.join(&welcome);
    (creator, second)
}

fn bench_stack<M: Member>(c: &mut Criterion, name: &str) {
    let mut g = c.benchmark_group(name);
    g.bench_function("key_package", |b| {
        let mut m = M::new("blair");
        b.iter(|| m.key_package())
    });
    g.bench_function("create_group", |b| {
        b.iter_batched_ref(
            || M::new("alex"),
            |m| m.create_group(),
            BatchSize::SmallInput,
        )
    });
    // Session set-up as the inviter does it: add the accepter to a new group.
    g.bench_function("add_to_new_group", |b| {
        b.iter_batched_ref(
            || {
                let mut alex = M::new("alex");
                alex.create_group();
                (alex, M::new("blair").key_package())
            },
            |(alex, kp)| alex.add(std::slice::from_ref(kp)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("join", |b| {
        b.iter_batched_ref(
            || {
                let mut alex = M::new("alex");
                let mut blair = M::new("blair");
                alex.create_group();
                let (_, welcome) = alex.add(&[blair.key_package()]);
                (blair, welcome)
            },
            |(blair, welcome)| blair.join(welcome),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("encrypt_decrypt_1KiB", |b| {
        let (mut alex, mut blair) = pair::<M>();
        let plaintext = vec![7u8; PAYLOAD];
        b.iter(|| {
            let ct = alex.encrypt(&plaintext);
            blair.decrypt(&ct)
        })
    });
    g.bench_function("update_commit_and_process", |b| {
        let (mut alex, mut blair) = pair::<M>();
        b.iter(|| {
            let commit = alex.update();
            blair.process_commit(&commit)
        })
    });
    for n in [100usize] {
        let (mut creator, mut second) = group::<M>(n);
        g.bench_function(format!("add_commit_{n}"), |b| {
            b.iter_batched_ref(
                || M::new("new").key_package(),
                |kp| creator.add_discard(kp),
                BatchSize::SmallInput,
            )
        });
        let kp = M::new("size").key_package();
        eprintln!(
            "{name}: add commit in a group of {n}: {} bytes",
            creator.add_discard(&kp)
        );
        g.bench_function(format!("update_commit_and_process_{n}"), |b| {
            b.iter(|| {
                let commit = creator.update();
                second.process_commit(&commit)
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_stack::<MlsRs>(c, "mls-rs");
    bench_stack::<OpenMls>(c, "openmls");
}

criterion_group! {
    name = mls;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(mls);
