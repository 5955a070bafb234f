//! The relay as a CGI program behind a real web server (lighttpd, from
//! Debian's package; `.ci/run` installs it): the binary is dropped into
//! `cgi-bin/` with a `kith-relay.toml` beside it, as on shared hosting, and
//! two people meet, talk and send a file through it with the `kith`
//! binary. Without
//! lighttpd the test says it is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Person;

fn lighttpd() -> Option<PathBuf> {
    ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

struct WebServer {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WebServer {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// lighttpd serving `cgi-bin/kith-relay.cgi` (this build's relay binary).
fn serve_relay_as_cgi(lighttpd: &Path, dir: &Path) -> WebServer {
    let cgi_bin = dir.join("cgi-bin");
    std::fs::create_dir_all(&cgi_bin).unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let program = cgi_bin.join("kith-relay.cgi");
    let binary = kith_testkit::relay_binary();
    if std::fs::hard_link(&binary, &program).is_err() {
        std::fs::copy(&binary, &program).unwrap();
    }
    // The database lives outside the web root.
    std::fs::write(
        cgi_bin.join("kith-relay.toml"),
        format!(
            "db = \"{}\"\n[rate_limit]\nenabled = false\n",
            dir.join("data/relay.db").display()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.join("lighttpd.conf");
    std::fs::write(
        &conf,
        format!(
            "server.document-root = \"{www}\"\n\
             server.bind = \"127.0.0.1\"\n\
             server.port = {port}\n\
             server.modules = (\"mod_alias\", \"mod_cgi\")\n\
             server.errorlog = \"{log}\"\n\
             alias.url = (\"/cgi-bin/\" => \"{cgi}/\")\n\
             cgi.assign = (\".cgi\" => \"\")\n",
            www = dir.join("www").display(),
            log = dir.join("error.log").display(),
            cgi = cgi_bin.display(),
        ),
    )
    .unwrap();
    let child = Command::new(lighttpd)
        .arg("-D")
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "lighttpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    WebServer {
        child,
        url: format!("http://127.0.0.1:{port}/cgi-bin/kith-relay.cgi"),
        dir: dir.to_path_buf(),
    }
}

#[test]
fn two_people_meet_and_talk_through_a_cgi_relay() {
    let Some(lighttpd) = lighttpd() else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED two_people_meet_and_talk_through_a_cgi_relay: install lighttpd \
             (apt-get install lighttpd) to run it"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let web = serve_relay_as_cgi(&lighttpd, dir.path());
    let alex = Person::new(dir.path(), "alex");
    let blair = Person::new(dir.path(), "blair");
    let init = alex.run(&["init", "--name", "Alex", "--relay", &web.url]);
    assert!(
        init.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&init.stderr),
        web.log()
    );
    blair.ok(&["init", "--name", "Blair"]);

    let link = alex.json(&["invite"])["link"].as_str().unwrap().to_string();
    assert!(link.contains("/cgi-bin/kith-relay.cgi/"), "{link}");
    let accepted = blair.json(&["accept", &link]);
    assert_eq!(accepted["name"], "Alex");
    let sync = alex.json(&["sync"]);
    assert_eq!(sync["connected"][0]["name"], "Blair", "{sync}");
    // The link was for one person.
    let again = Person::new(dir.path(), "charlie");
    again.ok(&["init", "--name", "Charlie"]);
    assert!(!again.run(&["accept", &link]).status.success());

    alex.ok(&["send", "Blair", "hello through a web server"]);
    blair.ok(&["send", "Alex", "and back"]);
    blair.ok(&["sync"]);
    alex.ok(&["sync"]);
    assert_eq!(
        alex.texts("Blair"),
        [
            ("me".to_string(), "hello through a web server".to_string()),
            ("Blair".to_string(), "and back".to_string())
        ]
    );
    assert_eq!(
        blair.texts("Alex"),
        [
            ("Alex".to_string(), "hello through a web server".to_string()),
            ("me".to_string(), "and back".to_string())
        ]
    );
    // Each request was its own process; the store holds the conversation.
    assert!(dir.path().join("data/relay.db").exists());

    // A file of several chunks, each put as its own signed request (a CGI
    // relay has no WebSocket), and downloaded whole.
    let bytes: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.path().join("notes.pdf");
    std::fs::write(&path, &bytes).unwrap();
    let sent = blair.run(&["send-file", "Alex", path.to_str().unwrap()]);
    assert!(
        sent.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&sent.stderr),
        web.log()
    );
    assert_eq!(
        kith_testkit::blob_files(&dir.path().join("data/relay.db")).len(),
        1,
        "stored beside the database"
    );
    alex.ok(&["sync"]);
    let id = alex
        .json(&["read", "Blair"])
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    alex.ok(&[
        "download",
        "Blair",
        &id,
        "--to",
        downloads.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(downloads.join("notes.pdf")).unwrap(), bytes);

    // A public directory under CGI: its state in the same store, made by
    // the operator's command on it.
    let made = Command::new(kith_testkit::relay_binary())
        .args(["directory", "create", "neighbours", "--db"])
        .arg(dir.path().join("data/relay.db"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let link = format!("{}/d/neighbours", web.url);
    alex.ok(&["directory", "join", &link]);
    alex.ok(&["directory", "publish", "neighbours", "--text", "flat 4"]);
    let found = blair.json(&["directory", "search", &link, "flat"]);
    assert_eq!(found[0]["display_name"], "Alex", "{found}\n{}", web.log());
}
