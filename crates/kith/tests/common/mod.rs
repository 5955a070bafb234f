//! Helpers shared by the end-to-end tests: people are `kith` processes
//! with their own home directory, relays are real `kith-relay` processes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use kith_testkit::{RelayOptions, RelayProcess};
use serde_json::Value;

pub struct Person {
    pub home: PathBuf,
    /// Environment for every command (e.g. `KITH_CA_FILE`).
    pub env: Vec<(String, String)>,
}

impl Person {
    pub fn new(dir: &Path, who: &str) -> Self {
        Self {
            home: dir.join(who),
            env: Vec::new(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kith"));
        c.arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("KITH_HOME")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kith {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(self.ok(&all).trim()).unwrap()
    }

    pub fn texts(&self, conv: &str) -> Vec<(String, String)> {
        self.json(&["read", conv])
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["from"].as_str().unwrap().to_string(),
                    m["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

pub fn relay() -> RelayProcess {
    RelayProcess::start(RelayOptions::default().unlimited()).unwrap()
}

/// Alex (with a relay) invites Blair (without one); Blair accepts; Alex
/// syncs and sees the connection.
pub fn meet(dir: &Path, relay: &RelayProcess) -> (Person, Person) {
    let alex = Person::new(dir, "alex");
    let blair = Person::new(dir, "blair");
    alex.ok(&["init", "--name", "Alex Example", "--relay", relay.url()]);
    blair.ok(&["init", "--name", "Blair Sample"]);
    let link = alex.json(&["invite"])["link"].as_str().unwrap().to_string();
    assert!(link.starts_with("kith:http://"), "{link}");
    let accepted = blair.json(&["accept", &link]);
    assert_eq!(accepted["name"], "Alex Example");
    let sync = alex.json(&["sync"]);
    assert_eq!(sync["connected"][0]["name"], "Blair Sample", "{sync}");
    (alex, blair)
}

/// Spawns `kith watch --json` and forwards its lines.
pub fn watch(person: &Person) -> (Child, mpsc::Receiver<Value>) {
    let mut child = person
        .command(&["--json", "watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// `a` invites `b` (both have profiles); returns the conversation ids
/// (as `a` sees it, as `b` sees it).
pub fn connect(a: &Person, b: &Person) -> (String, String) {
    let link = a.json(&["invite"])["link"].as_str().unwrap().to_string();
    let accepted = b.json(&["accept", &link]);
    let sync = a.json(&["sync"]);
    let on_a = sync["connected"][0]["id"].as_str().unwrap().to_string();
    (on_a, accepted["id"].as_str().unwrap().to_string())
}

/// Direct access to a relay's store, as its operator has.
pub fn relay_db(relay: &RelayProcess) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(relay.db_path()).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db
}

/// How many channels a relay holds.
pub fn channel_count(relay: &RelayProcess) -> i64 {
    relay_db(relay)
        .query_row("SELECT COUNT(*) FROM channels", [], |r| r.get(0))
        .unwrap()
}

/// Alex (profile on `relay`) and people without a relay, each with a
/// profile named as given (home directories in lower case).
pub fn alex_and<const N: usize>(
    dir: &Path,
    relay: &RelayProcess,
    names: [&str; N],
) -> (Person, [Person; N]) {
    let alex = Person::new(dir, "alex");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    let others = names.map(|name| {
        let p = Person::new(dir, &name.to_lowercase());
        p.ok(&["init", "--name", name]);
        p
    });
    (alex, others)
}
