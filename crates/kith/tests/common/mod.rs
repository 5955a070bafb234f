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

    /// Runs a command with `input` on its standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
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

/// `kith-relay directory ARGS --db <the relay's store>`, as its operator
/// runs it beside the relay: its stdout, trimmed.
pub fn relay_directory(relay: &RelayProcess, args: &[&str]) -> String {
    let out = Command::new(kith_testkit::relay_binary())
        .arg("directory")
        .args(args)
        .arg("--db")
        .arg(relay.db_path())
        .env_remove("KITH_RELAY_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kith-relay directory {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
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

/// A `kith up` process for a person, on a port of its choosing.
pub struct Up {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub home: PathBuf,
}

impl Up {
    pub fn start(person: &Person) -> Self {
        let mut child = person
            .command(&["--json", "up", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first["event"], "up", "{first}");
        // Whatever else it prints is read, so that it never blocks.
        std::thread::spawn(move || for _ in lines {});
        let token = std::fs::read_to_string(person.home.join("daemon.token"))
            .unwrap()
            .trim()
            .to_string();
        Self {
            child,
            url: first["url"].as_str().unwrap().to_string(),
            token,
            home: person.home.clone(),
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// An API call with the token; the answer must be 200.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let answer = self.raw(method, path, body);
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.text());
        answer.json()
    }

    pub fn raw(&self, method: &str, path: &str, body: Option<Value>) -> kith_testkit::http::Answer {
        let auth = self.auth();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        kith_testkit::http::request(
            method,
            &format!("{}{path}", self.url),
            &headers,
            body.as_bytes(),
        )
        .unwrap()
    }

    /// Stops it as systemd would (SIGTERM); it must exit cleanly.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "kith up ended with {status}");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `secs` for `check` to hold.
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
