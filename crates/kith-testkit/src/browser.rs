//! A headless Chromium for browser tests, driven over WebDriver (W3C,
//! plain HTTP and JSON): Debian's `chromium` and `chromedriver`. Where
//! they are not installed, [`Browser::start`] says so and tests report
//! themselves skipped (CI installs them).
//!
//! ```text
//!  test ──spawn──▶ chromedriver --port=P ──▶ chromium --headless (a profile per browser)
//!       ──HTTP /session/…──▶ navigate, find, click, type, run a script, screenshot
//! ```

// JSON values indexed by name give Null when absent; they never panic.
#![allow(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::request;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether the browser tests can run here; if not, why.
pub fn unavailable() -> Option<String> {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        if !Path::new(path).exists() {
            return Some(format!("{path} is missing (Debian package {package})"));
        }
    }
    None
}

/// One headless Chromium with its own profile, and its driver.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element found in the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts a browser; `extra` adds command-line switches (fake media
    /// devices for calls).
    pub fn start(extra: &[&str]) -> Result<Self, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver: {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while request("GET", &format!("{base}/status"), &[], b"").is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1200,850",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra.iter().map(ToString::to_string));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            _profile: profile,
        };
        let answer = browser.post("/session", &caps)?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {answer}"))?
            .to_string();
        Ok(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let url = if path.starts_with("/session") && !self.session.is_empty() {
            format!(
                "{}/session/{}{}",
                self.base,
                self.session,
                &path["/session".len()..]
            )
        } else {
            format!("{}{path}", self.base)
        };
        let body = body.map(Value::to_string).unwrap_or_default();
        let answer = request(
            method,
            &url,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        let json = answer.json();
        if answer.status != 200 {
            return Err(format!(
                "{method} {path}: {} {}",
                json["value"]["error"], json["value"]["message"]
            ));
        }
        Ok(json["value"].clone())
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call("POST", path, Some(body))
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.post("/session/url", &json!({ "url": url })).map(drop)
    }

    /// The first element matching `css`, waiting up to 15 s for it.
    pub fn find(&self, css: &str) -> Result<Element, String> {
        self.wait(15, &format!("an element {css}"), || self.try_find(css))
    }

    pub fn try_find(&self, css: &str) -> Option<Element> {
        let found = self
            .post(
                "/session/element",
                &json!({"using": "css selector", "value": css}),
            )
            .ok()?;
        found[ELEMENT].as_str().map(|id| Element(id.to_string()))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.post(
            "/session/elements",
            &json!({"using": "css selector", "value": css}),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_string())))
        .collect()
    }

    /// Clicks the first element matching `css`, finding it again while it
    /// is replaced (a live page re-renders).
    pub fn click(&self, css: &str) -> Result<(), String> {
        self.wait(15, &format!("{css} clickable"), || {
            let e = self.try_find(css)?;
            self.post(&format!("/session/element/{}/click", e.0), &json!({}))
                .ok()
        })
        .map(drop)
    }

    /// Types into an element (keys as WebDriver takes them: `\u{E007}` is
    /// Enter).
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let e = self.find(css)?;
        self.post(
            &format!("/session/element/{}/value", e.0),
            &json!({ "text": text }),
        )
        .map(drop)
    }

    pub fn text(&self, element: &Element) -> String {
        self.call("GET", &format!("/session/element/{}/text", element.0), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns
    /// what it returns; a returned promise is awaited.
    pub fn run(&self, script: &str, args: &[Value]) -> Result<Value, String> {
        self.post(
            "/session/execute/sync",
            &json!({"script": script, "args": args}),
        )
    }

    /// Waits up to `secs` for `check` to give something.
    pub fn wait<T>(
        &self,
        secs: u64,
        what: &str,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check() {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the page's text (body) contains `needle`.
    pub fn wait_text(&self, secs: u64, needle: &str) -> Result<(), String> {
        self.wait(secs, &format!("the text {needle:?}"), || {
            let body = self.run("return document.body.innerText", &[]).ok()?;
            body.as_str()?.contains(needle).then_some(())
        })
    }

    /// The text of an open alert, confirm or prompt, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        self.call("GET", "/session/alert/text", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    pub fn accept_alert(&self) -> Result<(), String> {
        self.post("/session/alert/accept", &json!({})).map(drop)
    }

    pub fn set_window(&self, width: u32, height: u32) -> Result<(), String> {
        self.post(
            "/session/window/rect",
            &json!({"width": width, "height": height}),
        )
        .map(drop)
    }

    /// Saves a screenshot (PNG) to `path`.
    pub fn screenshot(&self, path: &Path) -> Result<PathBuf, String> {
        let png = self.call("GET", "/session/screenshot", None)?;
        let bytes = decode_base64(png.as_str().unwrap_or_default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, bytes).map_err(|e| e.to_string())?;
        Ok(path.to_path_buf())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", "/session", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c).ok_or("not base64")? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}
