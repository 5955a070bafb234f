//! Ed25519 verification in batches.
//!
//! Checking one signature costs about 45 µs here; checking 16 together with
//! `ed25519_dalek::verify_batch` costs about 19 µs each. Requests that arrive
//! together are therefore verified together, the way the store commits
//! writes together:
//!
//! ```text
//! request tasks ──(message, signature, key)──▶ bounded queue
//!                                               │ verifier threads: take what is
//!                                               │ queued (up to MAX_BATCH)
//!                                               ▼
//!                      1 item: verify_strict;  n items: verify_batch, and on
//!                      failure verify_strict each, to find the bad ones
//! ```
//!
//! A lone request is verified at once, so batching adds no waiting at low load.

use ed25519_dalek::{Signature, VerifyingKey};
use prometheus_client::metrics::histogram::Histogram;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

const MAX_BATCH: usize = 32;
const QUEUE: usize = 4_096;

struct Item {
    message: Vec<u8>,
    signature: Signature,
    key: VerifyingKey,
    reply: oneshot::Sender<bool>,
}

/// A pool of threads verifying signatures in batches.
#[derive(Debug)]
pub(crate) struct Verifier {
    queue: Mutex<Option<SyncSender<Item>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Verifier {
    /// Starts `threads` verifier threads; `batch_sizes` observes each batch.
    pub(crate) fn start(threads: usize, batch_sizes: Histogram) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..threads.max(1))
            .map(|i| {
                let rx = rx.clone();
                let sizes = batch_sizes.clone();
                std::thread::Builder::new()
                    .name(format!("kith-verify-{i}"))
                    .spawn(move || run(&rx, &sizes))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            threads: Mutex::new(handles),
        })
    }

    /// Whether `signature` is `key`'s signature of `message`.
    pub(crate) async fn verify(
        &self,
        message: Vec<u8>,
        signature: Signature,
        key: VerifyingKey,
    ) -> bool {
        let (reply, answer) = oneshot::channel();
        let item = Item {
            message,
            signature,
            key,
            reply,
        };
        let queued = match self.queue.lock().ok().as_ref().and_then(|q| q.as_ref()) {
            Some(q) => q.try_send(item),
            None => Err(TrySendError::Disconnected(item)),
        };
        match queued {
            Ok(()) => answer.await.unwrap_or(false),
            // Queue full or shutting down: verify here rather than refuse.
            Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => item
                .key
                .verify_strict(&item.message, &item.signature)
                .is_ok(),
        }
    }

    /// Stops the threads once the queue is drained.
    pub(crate) fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn run(rx: &Mutex<Receiver<Item>>, sizes: &Histogram) {
    let mut batch: Vec<Item> = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            // One thread gathers a batch while the others verify theirs.
            let Ok(rx) = rx.lock() else { return };
            let Ok(first) = rx.recv() else { return };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        sizes.observe(batch.len() as f64);
        verify_all(&mut batch);
    }
}

fn verify_all(batch: &mut Vec<Item>) {
    let all_good = match batch.as_slice() {
        [] => return,
        [one] => one.key.verify_strict(&one.message, &one.signature).is_ok(),
        items => {
            let messages: Vec<&[u8]> = items.iter().map(|i| i.message.as_slice()).collect();
            let signatures: Vec<Signature> = items.iter().map(|i| i.signature).collect();
            let keys: Vec<VerifyingKey> = items.iter().map(|i| i.key).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
        }
    };
    let single = batch.len() == 1;
    for item in batch.drain(..) {
        let ok = if all_good {
            true
        } else if single {
            false
        } else {
            item.key
                .verify_strict(&item.message, &item.signature)
                .is_ok()
        };
        let _ = item.reply.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_signature_in_a_batch_is_found_and_the_rest_pass() {
        let v = Arc::new(Verifier::start(1, Histogram::new([1.0])).unwrap());
        let mut tasks = Vec::new();
        for i in 0..40u8 {
            let v = v.clone();
            tasks.push(tokio::spawn(async move {
                let key = SigningKey::from_bytes(&[i + 1; 32]);
                let message = vec![i; 100];
                let mut signature = key.sign(&message);
                if i % 7 == 3 {
                    let mut bytes = signature.to_bytes();
                    bytes[5] ^= 1;
                    signature = Signature::from_bytes(&bytes);
                }
                (i, v.verify(message, signature, key.verifying_key()).await)
            }));
        }
        for t in tasks {
            let (i, ok) = t.await.unwrap();
            assert_eq!(ok, i % 7 != 3, "item {i}");
        }
        v.close();
        // After close, verification still works (inline).
        let key = SigningKey::from_bytes(&[1; 32]);
        assert!(
            v.verify(b"m".to_vec(), key.sign(b"m"), key.verifying_key())
                .await
        );
    }
}
