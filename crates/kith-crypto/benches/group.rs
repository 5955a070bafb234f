//! Group costs at 10, 100 and 1,000 members (issue: groups on one channel).
//! Each commit is built by the group's creator and processed by another
//! member, both loaded fresh from their stored snapshots for every sample,
//! so every sample sees the same epoch. The groups are created by one add
//! commit, so parent nodes are blank: the tree every update commit must
//! encrypt to is the widest it gets (a worst case for `update`). The
//! `*_populated` variants first let one member under each node of the
//! creator's copath commit (about log2 n commits), as members' own updates
//! do over a group's life; then a commit encrypts to about log2 n nodes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs
)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kith_crypto::mls::{GroupSnapshot, IdentityKey, Session, key_package};
use kith_crypto::padding::pad;
use kith_wire::relay::SIZE_BUCKETS;

struct Group {
    key: IdentityKey,
    creator: GroupSnapshot,
    member: GroupSnapshot,
    member_key: IdentityKey,
}

impl Group {
    fn new(n: usize, populate: bool) -> Self {
        let key = IdentityKey::generate().unwrap();
        // Leaf 2^k is under the k-th node of leaf 0's copath; those members
        // are the ones that join (leaf 1 is the measured member).
        let mut joiners = Vec::new();
        let mut kps = Vec::new();
        for leaf in 1..n {
            let member_key = IdentityKey::generate().unwrap();
            let (kp, pending) = key_package(&member_key).unwrap();
            if leaf.is_power_of_two() {
                joiners.push((member_key, pending));
            }
            kps.push(kp);
        }
        let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
        let (mut creator, welcome) = Session::create(&key, &refs).unwrap();
        if !populate {
            joiners.truncate(1);
        }
        let mut sessions: Vec<Session> = joiners
            .iter()
            .map(|(k, pending)| Session::join(k, pending, &welcome).unwrap())
            .collect();
        if populate {
            for i in 0..sessions.len() {
                let commit = sessions[i].commit(&[], &[]).unwrap().commit;
                creator.process(&commit).unwrap();
                for s in &mut sessions {
                    s.process(&commit).unwrap();
                }
            }
        }
        let mut member = sessions.swap_remove(0);
        assert_eq!(member.members().len(), n);
        Self {
            creator: creator.snapshot().unwrap(),
            member: member.snapshot().unwrap(),
            key,
            member_key: joiners.swap_remove(0).0,
        }
    }

    fn creator(&self) -> Session {
        Session::load(&self.key, self.creator.clone()).unwrap()
    }

    fn member(&self) -> Session {
        Session::load(&self.member_key, self.member.clone()).unwrap()
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("group");
    g.sample_size(10);
    for n in [10usize, 100, 1000] {
        let group = Group::new(n, false);
        let populated = Group::new(n, true);
        let last = u32::try_from(n - 1).unwrap();
        for (name, remove) in [("update", &[][..]), ("remove", &[last][..])] {
            g.bench_function(format!("{name}_commit_populated/{n}"), |b| {
                b.iter_batched_ref(
                    || populated.creator(),
                    |s| s.commit(&[], remove).unwrap(),
                    BatchSize::LargeInput,
                )
            });
            g.bench_function(format!("{name}_process_populated/{n}"), |b| {
                b.iter_batched_ref(
                    || {
                        (
                            populated.member(),
                            populated.creator().commit(&[], remove).unwrap().commit,
                        )
                    },
                    |(m, commit)| m.process(commit).unwrap(),
                    BatchSize::LargeInput,
                )
            });
        }
        let add = |s: &mut Session| {
            s.commit(
                &[&key_package(&IdentityKey::generate().unwrap()).unwrap().0],
                &[],
            )
            .unwrap()
        };
        g.bench_function(format!("add_commit/{n}"), |b| {
            b.iter_batched_ref(|| group.creator(), |s| add(s), BatchSize::LargeInput)
        });
        g.bench_function(format!("add_process/{n}"), |b| {
            b.iter_batched_ref(
                || (group.member(), add(&mut group.creator()).commit),
                |(m, commit)| m.process(commit).unwrap(),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("welcome_join/{n}"), |b| {
            b.iter_batched(
                || {
                    let joiner = IdentityKey::generate().unwrap();
                    let (kp, pending) = key_package(&joiner).unwrap();
                    let staged = group.creator().commit(&[&kp], &[]).unwrap();
                    (joiner, pending, staged.welcomes[0].clone())
                },
                |(joiner, pending, welcome)| Session::join(&joiner, &pending, &welcome).unwrap(),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("remove_commit/{n}"), |b| {
            b.iter_batched_ref(
                || group.creator(),
                |s| s.commit(&[], &[last]).unwrap(),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("remove_process/{n}"), |b| {
            b.iter_batched_ref(
                || {
                    (
                        group.member(),
                        group.creator().commit(&[], &[last]).unwrap().commit,
                    )
                },
                |(m, commit)| m.process(commit).unwrap(),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("update_commit/{n}"), |b| {
            b.iter_batched_ref(
                || group.creator(),
                |s| s.commit(&[], &[]).unwrap(),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("update_process/{n}"), |b| {
            b.iter_batched_ref(
                || {
                    (
                        group.member(),
                        group.creator().commit(&[], &[]).unwrap().commit,
                    )
                },
                |(m, commit)| m.process(commit).unwrap(),
                BatchSize::LargeInput,
            )
        });
        let mut creator = group.creator();
        let mut member = group.member();
        g.bench_function(format!("encrypt_decrypt_1KiB/{n}"), |b| {
            let plaintext = vec![1u8; 1024];
            b.iter(|| {
                let ct = creator.encrypt(&plaintext).unwrap();
                member.process(&ct).unwrap()
            })
        });
        // What the relay stores per message: one padded payload, whatever n.
        let stored = pad(&creator.encrypt(&[1u8; 1024]).unwrap(), &SIZE_BUCKETS)
            .unwrap()
            .len();
        let add_size = add(&mut group.creator()).commit.len();
        let update_size = group.creator().commit(&[], &[]).unwrap().commit.len();
        eprintln!(
            "group of {n}: relay bytes per 1 KiB message {stored}; add commit {add_size} B; update commit {update_size} B"
        );
    }
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
