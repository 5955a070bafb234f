//! What a person relies on without thinking about it: the terminal shows
//! what a contact wrote and nothing more, the profile is private and has one
//! owner at a time, long text comes from standard input, and every error is
//! one line (issue: the engine rebuilt, findings 5, 8, 9, 12, 13).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::process::Stdio;

use common::{Person, meet, relay};

/// A contact's message cannot pass for a line of someone else's, and a
/// name chosen by a contact cannot add a row to `kith list`.
#[test]
fn peer_text_cannot_forge_lines_in_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let forged = "ok\n[2026-12-01 08:47] Alex Example: wire me money\n\u{1b}[2Jcleared\r";
    blair.ok(&["send", "Alex Example", forged]);
    alex.ok(&["sync"]);
    let read = alex.ok(&["read", "Blair Sample"]);
    let lines: Vec<&str> = read.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('[')).count(),
        1,
        "one message, one header: {read}"
    );
    assert!(lines[0].ends_with("Blair Sample: ok"), "{read}");
    assert!(lines[1].starts_with("    [2026-12-01 08:47]"), "{read}");
    assert!(!read.contains('\u{1b}') && !read.contains('\r'), "{read:?}");
    assert!(read.contains("\\u{1b}[2Jcleared\\r"), "{read}");
    // The JSON keeps the text exactly as sent.
    assert_eq!(alex.texts("Blair Sample")[0].1, forged);

    // A name with a newline, shown to whoever accepts.
    let charlie = Person::new(dir.path(), "charlie");
    charlie.ok(&["init", "--name", "Charlie"]);
    let link = alex.json(&["invite", "--name", "Alex\n12345678  Bank (2 unread)"])["link"]
        .as_str()
        .unwrap()
        .to_string();
    charlie.ok(&["accept", &link]);
    let list = charlie.ok(&["list"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(list.contains("Alex\\n12345678  Bank (2 unread)"), "{list}");
}

#[cfg(unix)]
#[test]
fn the_profile_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, _blair) = meet(dir.path(), &relay);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&alex.home), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&alex.home).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 2, "the database and the lock at least");

    // A profile left readable (by an older kith) is made private again.
    std::fs::set_permissions(&alex.home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = alex.home.join("kith.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    alex.ok(&["list"]);
    assert_eq!(mode(&alex.home), 0o700);
    assert_eq!(mode(&db), 0o600);
}

/// Whether process `pid` has the profile's lock file open (Linux).
fn holds_lock_file(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.ends_with("kith.lock")))
    })
}

/// A second process waits for the one using the profile, and gives up with
/// one clear line if it does not finish.
#[test]
fn a_profile_has_one_owner_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(alex.home.join("kith.lock"))
        .unwrap();
    lock.lock().unwrap();
    let mut busy = alex.command(&["send", "Blair Sample", "not now"]);
    busy.env("KITH_LOCK_WAIT_SECS", "1");
    let out = busy.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another kith process is using"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Waiting works: the owner finishes while the second process waits.
    let waiting = alex
        .command(&["send", "Blair Sample", "after the wait"])
        .spawn()
        .unwrap();
    // Unlocked once the second process has opened the lock file (it is
    // then waiting for it): a condition polled, not a guess of time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !holds_lock_file(waiting.id()) {
        assert!(std::time::Instant::now() < deadline, "never waited");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    lock.unlock().unwrap();
    assert!(waiting.wait_with_output().unwrap().status.success());
    blair.ok(&["sync"]);
    let texts = blair.texts("Alex Example");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0].1, "after the wait");
}

/// `kith send CONV -` reads the text from standard input; what is over the
/// limit is refused before anything is encrypted, with the limit in the
/// message, and nothing is kept or sent.
#[test]
fn long_text_comes_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let send_stdin = |text: &[u8]| {
        let mut child = blair
            .command(&["send", "Alex Example", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let text = text.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&text);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    };
    let long: String = (0..2000)
        .map(|i| format!("line {i} of a long letter\n"))
        .collect();
    assert!(send_stdin(long.as_bytes()).status.success());
    alex.ok(&["sync"]);
    assert_eq!(alex.texts("Blair Sample")[0].1, long);

    let too_long = vec![b'x'; 1_000_000];
    let out = send_stdin(&too_long);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1000000 bytes") && err.contains("200000 bytes"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(blair.texts("Alex Example").len(), 1, "nothing kept");
    alex.ok(&["sync"]);
    assert_eq!(alex.texts("Blair Sample").len(), 1, "nothing sent");
}

#[test]
fn every_error_is_one_line_and_json_errors_have_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--home")
        .arg(&file)
        .args(["init", "--name", "X"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is a file, not a profile directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A relay that is not there: its cause said once.
    let dani = Person::new(dir.path(), "dani");
    let out = dani.run(&["init", "--name", "Dani", "--relay", "http://127.0.0.1:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.matches("cannot reach the relay").count(), 1, "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = dani.run(&["--json", "send", "nobody", "hi"]);
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "no_profile", "{err}");
    dani.ok(&["init", "--name", "Dani"]);
    let out = dani.run(&["--json", "send", "nobody", "hi"]);
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "no_such_conversation", "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("nobody"));
}

/// `kith-relay` errors are one line too, whatever `RUST_BACKTRACE` says,
/// and `backup` finds the database `serve` uses through the same config.
#[test]
fn relay_commands_resolve_the_config_of_serve_and_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let relay_bin = kith_testkit::relay_binary();
    let config = dir.path().join("relay.toml");
    let db = dir.path().join("served.db");
    std::fs::write(&config, format!("db = {:?}\n", db.display().to_string())).unwrap();
    let relay = kith_testkit::RelayProcess::start(kith_testkit::RelayOptions {
        db: Some(db.display().to_string()),
        ..kith_testkit::RelayOptions::default()
    })
    .unwrap();
    assert!(relay.url().starts_with("http://"));
    let backup = dir.path().join("backup.db");
    let out = std::process::Command::new(&relay_bin)
        .args(["backup", "--to"])
        .arg(&backup)
        .env("KITH_RELAY_CONFIG", &config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("served.db"));

    let out = std::process::Command::new(&relay_bin)
        .args(["admin", "stats", "--db"])
        .arg(dir.path().join("missing.db"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no relay database"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        !err.contains("Caused by") && !err.contains("backtrace"),
        "{err}"
    );
}
