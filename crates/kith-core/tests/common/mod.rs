//! People as in-process engines on one in-process relay, with one fake
//! clock: what the engine tests share.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::path::Path;
use std::sync::Arc;

use kith_core::{Config, Engine, ManualClock};

#[derive(Debug)]
pub struct World {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub relay: kith_testkit::InProcessRelay,
}

impl World {
    pub async fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::starting_now(),
            relay: kith_testkit::InProcessRelay::start().await.unwrap(),
        }
    }

    pub fn config(&self) -> Config {
        Config {
            clock: self.clock.clone(),
            ..Config::default()
        }
    }

    pub fn home(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A person with the world's relay as their own.
    pub async fn host(&self, name: &str) -> Engine {
        Engine::init(
            &self.home(name),
            name,
            Some(self.relay.url()),
            self.config(),
        )
        .await
        .unwrap()
    }

    /// A person without a relay.
    pub async fn guest(&self, name: &str) -> Engine {
        Engine::init(&self.home(name), name, None, self.config())
            .await
            .unwrap()
    }
}

#[path = "../../src/testing.rs"]
mod testing;
pub use testing::meet;

pub fn texts(e: &mut Engine, conv: &str) -> Vec<(String, String)> {
    e.read(conv)
        .unwrap()
        .into_iter()
        .map(|m| (m.from, m.text))
        .collect()
}

pub fn member_names(e: &Engine, group: &str) -> Vec<String> {
    let mut names: Vec<String> = e
        .group_members(group)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

/// The profile's database, opened beside the engine (as a modified client
/// or a damaged disk would see it).
pub fn profile_db(world: &World, name: &str) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(world.home(name).join("kith.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}
