//! Timers, receipts, payments, calls and application content
//! (content-v1.md §7.8–§7.12).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use kith_content::kind::{CallStep, PaymentState};
use kith_core::Engine;

use crate::cli::{CallCommand, OnOff, PayCommand};
use crate::render::text::line;
use crate::render::{self, json, out};

/// `30s`, `10m`, `1h`, `2d`, `1w`, a number of seconds, or `off`.
fn parse_after(s: &str) -> Result<u32> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{s:?} is not a duration (like 30s, 10m, 1h, 1d, 1w, or off)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => bail!("{s:?} is not a duration (like 30s, 10m, 1h, 1d, 1w, or off)"),
    };
    u32::try_from(n.saturating_mul(scale)).context("that timer is too long")
}

pub(crate) async fn timer(
    engine: &mut Engine,
    conv: &str,
    after: &str,
    as_json: bool,
) -> Result<()> {
    let seconds = parse_after(after)?;
    let set = engine.set_timer(conv, seconds).await?;
    if as_json {
        return json(&set);
    }
    out(&set.text);
    Ok(())
}

pub(crate) fn receipts(
    engine: &mut Engine,
    conv: &str,
    setting: OnOff,
    as_json: bool,
) -> Result<()> {
    let on = matches!(setting, OnOff::On);
    engine.set_receipts(conv, on)?;
    if as_json {
        return json(&serde_json::json!({ "receipts": on }));
    }
    out(if on {
        "receipts on: your contacts see when you got and read their messages"
    } else {
        "receipts off: you send none in this conversation"
    });
    Ok(())
}

pub(crate) fn auto_download(
    engine: &mut Engine,
    conv: &str,
    max: &str,
    as_json: bool,
) -> Result<()> {
    let max = parse_size(max)?;
    engine.set_auto_download(conv, max)?;
    let dir = engine.downloads_dir();
    if as_json {
        return json(&serde_json::json!({ "auto_download_max": max, "dir": dir }));
    }
    match max {
        Some(max) => out(&format!(
            "files up to {} are downloaded to {} as they arrive",
            kith_core::size_words(max),
            line(&dir.display().to_string())
        )),
        None => out("automatic download off: files wait for `kith download`"),
    }
    Ok(())
}

/// `off`, or a size in bytes with an optional decimal unit: `750`, `500kB`,
/// `10MB`, `2GB`.
fn parse_size(text: &str) -> Result<Option<u64>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let not_a_size =
        || anyhow::anyhow!("{text:?} is not a size: write it like 10MB, 500kB or 2GB, or off");
    let digits = text.find(|c: char| !c.is_ascii_digit() && c != '.');
    let (number, unit) = text.split_at(digits.unwrap_or(text.len()));
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        _ => return Err(not_a_size()),
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * unit < 1e15 => Ok(Some((n * unit) as u64)),
        _ => Err(not_a_size()),
    }
}

pub(crate) async fn pay(engine: &mut Engine, command: PayCommand, as_json: bool) -> Result<()> {
    let message = match command {
        PayCommand::Request {
            conv,
            to,
            amount,
            note,
        } => {
            engine
                .request_payment(&conv, &to, amount.as_deref(), note.as_deref())
                .await?
        }
        PayCommand::Paid {
            conv,
            message,
            reference,
        } => {
            engine
                .answer_payment(&conv, &message, PaymentState::Paid, reference.as_deref())
                .await?
        }
        PayCommand::Decline { conv, message } => {
            engine
                .answer_payment(&conv, &message, PaymentState::Declined, None)
                .await?
        }
        PayCommand::Open {
            conv,
            message,
            open,
        } => {
            let payment = engine.payment(&conv, &message)?;
            if as_json {
                json(&payment)?;
            } else {
                out(&format!(
                    "{} ({})",
                    line(&payment.description),
                    payment.state
                ));
                out(&line(&payment.uri));
            }
            if open {
                // The URI came from a peer: it is handed over as one
                // argument, never through a shell, and only as payto:.
                if !payment.uri.starts_with("payto://") {
                    bail!("not a payto URI; not opened");
                }
                let status = std::process::Command::new("xdg-open")
                    .arg(&payment.uri)
                    .status()
                    .context("cannot run xdg-open to hand the request to a payment app")?;
                if !status.success() {
                    bail!("no payment app took the request (xdg-open: {status})");
                }
            }
            return Ok(());
        }
    };
    if as_json {
        return json(&message);
    }
    render::message(&message);
    Ok(())
}

/// A file's bytes, up to what one message carries.
pub(crate) fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    let max = kith_content::MAX_CONTENT as u64;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!("the {what} in {} is over {max} bytes", path.display());
    }
    Ok(bytes)
}

fn read_sdp(path: Option<&Path>) -> Result<String> {
    match path {
        None => Ok(String::new()),
        Some(p) => String::from_utf8(read_file(p, "session description")?)
            .with_context(|| format!("{} is not UTF-8 text", p.display())),
    }
}

pub(crate) async fn call(engine: &mut Engine, command: CallCommand, as_json: bool) -> Result<()> {
    let call = match command {
        CallCommand::Ring {
            conv,
            video,
            sdp_file,
        } => {
            let offer = read_sdp(sdp_file.as_deref())?;
            engine.call(&conv, video, &offer).await?
        }
        CallCommand::Answer {
            conv,
            call,
            sdp_file,
        } => {
            let answer = read_sdp(sdp_file.as_deref())?;
            engine
                .call_step(&conv, &call, CallStep::Answer, &answer)
                .await?
        }
        CallCommand::Candidate {
            conv,
            call,
            candidate,
        } => {
            engine
                .call_step(&conv, &call, CallStep::Candidate, &candidate)
                .await?
        }
        CallCommand::Decline { conv, call } => {
            engine
                .call_step(&conv, &call, CallStep::Decline, "")
                .await?
        }
        CallCommand::Hangup { conv, call } => {
            engine.call_step(&conv, &call, CallStep::Hangup, "").await?
        }
        CallCommand::List { conv } => {
            let calls = engine.calls(&conv)?;
            if as_json {
                return json(&calls);
            }
            calls.iter().for_each(render::call);
            return Ok(());
        }
    };
    if as_json {
        return json(&call);
    }
    render::call(&call);
    Ok(())
}

/// Shows a transfer's progress: a bar with rate and time left on a
/// terminal, a JSON line per step with `--json`, nothing otherwise.
pub(crate) struct Meter {
    bar: Option<indicatif::ProgressBar>,
    /// Drawn by the process the daemon runs the command for.
    remote: bool,
    what: String,
    json: bool,
}

impl Meter {
    pub(crate) fn new(what: &str, as_json: bool) -> Self {
        let shown = !as_json && render::terminal();
        let remote = shown && render::REMOTE.try_with(|_| ()).is_ok();
        let bar = (shown && !remote).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta} left",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_string());
            bar
        });
        Self {
            bar,
            remote,
            what: what.to_string(),
            json: as_json,
        }
    }

    /// Where the daemon ran the command: a step it reported.
    pub(crate) fn show(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    fn step(&self, p: kith_core::Progress) {
        if self.remote {
            render::progress(&self.what, p.done_bytes, p.total_bytes);
        }
        self.show(p.done_bytes, p.total_bytes);
        if self.json {
            let _ = json(&serde_json::json!({
                "event": "progress",
                "done_bytes": p.done_bytes,
                "total_bytes": p.total_bytes,
                "resumed_chunks": p.resumed_chunks,
                "moved_chunks": p.moved_chunks,
            }));
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub(crate) async fn send_file(
    engine: &mut Engine,
    conv: &str,
    path: &Path,
    caption: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let meter = Meter::new("sending", as_json);
    let sent = engine
        .send_file(conv, path, caption, |p| meter.step(p))
        .await;
    meter.finish();
    let sent = sent?;
    if as_json {
        return json(&serde_json::json!({ "event": "sent", "message": sent }));
    }
    render::message(&sent);
    Ok(())
}

pub(crate) async fn download(
    engine: &mut Engine,
    conv: &str,
    message: &str,
    to: Option<&Path>,
    as_json: bool,
) -> Result<()> {
    let dir = match to {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("no current directory: pass --to DIR")?,
    };
    let meter = Meter::new("downloading", as_json);
    let saved = engine
        .download(conv, message, &dir, |p| meter.step(p))
        .await;
    meter.finish();
    let saved = saved?;
    if as_json {
        return json(&serde_json::json!({ "event": "saved", "path": saved }));
    }
    out(&format!("saved {}", line(&saved.display().to_string())));
    Ok(())
}

pub(crate) async fn send_app(
    engine: &mut Engine,
    conv: &str,
    content_type: &str,
    data: &[u8],
    fallback: &str,
    as_json: bool,
) -> Result<()> {
    let sent = engine.send_app(conv, content_type, data, fallback).await?;
    if as_json {
        return json(&sent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{parse_after, parse_size};

    #[test]
    fn timers_read_as_people_write_them() {
        assert_eq!(parse_after("30s").unwrap(), 30);
        assert_eq!(parse_after("10m").unwrap(), 600);
        assert_eq!(parse_after("1h").unwrap(), 3600);
        assert_eq!(parse_after("2d").unwrap(), 172_800);
        assert_eq!(parse_after("1w").unwrap(), 604_800);
        assert_eq!(parse_after("45").unwrap(), 45);
        assert_eq!(parse_after("OFF").unwrap(), 0);
        assert!(parse_after("1y").is_err());
        assert!(parse_after("h").is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("off").ok(), Some(None));
        assert_eq!(parse_size("750").ok(), Some(Some(750)));
        assert_eq!(parse_size("500kB").ok(), Some(Some(500_000)));
        assert_eq!(parse_size("10MB").ok(), Some(Some(10_000_000)));
        assert_eq!(parse_size("1.5 GB").ok(), Some(Some(1_500_000_000)));
        for bad in ["", "ten", "10XB", "-1MB", "1e30"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
