//! Profiles, invitations and the messages of a conversation.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context, Result};
use kith_core::{Config, CoreError, Engine};

use crate::render::{self, json, out, warn};

pub(crate) async fn init(
    home: &Path,
    config: Config,
    name: &str,
    relay: Option<&str>,
    as_json: bool,
) -> Result<()> {
    Engine::init(home, name, relay, config).await?;
    if as_json {
        json(&serde_json::json!({"home": home, "name": name, "relay": relay}))
    } else {
        out(&format!("profile created in {}", home.display()));
        Ok(())
    }
}

pub(crate) async fn invite(
    engine: &mut Engine,
    relay: Option<&str>,
    name: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let invite = engine.invite(relay, name).await?;
    if as_json {
        return json(&invite);
    }
    render::invite(&invite);
    Ok(())
}

pub(crate) async fn accept(
    engine: &mut Engine,
    link: &str,
    name: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let accepted = engine.accept(link, name).await?;
    warn(&accepted.warnings);
    let conversation = &accepted.conversation;
    if as_json {
        return json(conversation);
    }
    if conversation.state == "joining" {
        out(&format!(
            "asked to join {}; you are in once an admin syncs (then `kith sync`)",
            render::text::line(&conversation.name)
        ));
    } else {
        out(&format!(
            "connected with {}",
            render::text::line(&conversation.name)
        ));
    }
    render::conversation(conversation);
    Ok(())
}

pub(crate) fn list(engine: &Engine, as_json: bool) -> Result<()> {
    let list = engine.list()?;
    if as_json {
        return json(&list);
    }
    list.iter().for_each(render::conversation);
    Ok(())
}

/// The text of `kith send`: `-` reads standard input, up to one byte more
/// than a message can carry (so that a longer one is refused, not cut).
fn message_text(text: &str) -> Result<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let max = kith_wire::conv::MAX_TEXT;
    let mut stdin = std::io::stdin().lock();
    let mut bytes = Vec::new();
    (&mut stdin)
        .take(u64::from(max))
        .read_to_end(&mut bytes)
        .context("reading the message from standard input")?;
    // The rest is only counted, never held: the error says how long it was.
    let rest = std::io::copy(&mut stdin, &mut std::io::sink())
        .context("reading the message from standard input")?;
    if rest > 0 {
        let len = bytes
            .len()
            .saturating_add(usize::try_from(rest).unwrap_or(usize::MAX));
        return Err(CoreError::TooLong {
            what: "message",
            len,
            max: usize::try_from(max).unwrap_or(usize::MAX),
        }
        .into());
    }
    String::from_utf8(bytes).context("the message on standard input is not UTF-8 text")
}

pub(crate) async fn send(engine: &mut Engine, conv: &str, text: &str, as_json: bool) -> Result<()> {
    let text = message_text(text)?;
    let message = engine.send(conv, &text).await?;
    if as_json {
        json(&message)?;
    }
    Ok(())
}

pub(crate) async fn sync(engine: &mut Engine, as_json: bool) -> Result<()> {
    let report = engine.sync().await?;
    warn(&report.errors);
    if as_json {
        return json(&report);
    }
    render::report(&report, false)
}

pub(crate) fn read(engine: &mut Engine, conv: &str, as_json: bool) -> Result<()> {
    let messages = engine.read(conv)?;
    if as_json {
        return json(&messages);
    }
    messages.iter().for_each(render::message);
    for e in engine.integrity_events(conv)? {
        render::integrity(&e.detail);
    }
    Ok(())
}

pub(crate) async fn watch(engine: &mut Engine, as_json: bool) -> Result<()> {
    let mut result = Ok(());
    engine
        .watch(
            |live| render::live(live, as_json),
            |report| {
                warn(&report.errors);
                result = render::report(report, as_json);
                result.is_ok()
            },
        )
        .await?;
    result
}

pub(crate) fn rename(engine: &mut Engine, conv: &str, name: &str, as_json: bool) -> Result<()> {
    let view = engine.rename(conv, name)?;
    if as_json {
        return json(&view);
    }
    render::conversation(&view);
    Ok(())
}

pub(crate) async fn delete(engine: &mut Engine, conv: &str, as_json: bool) -> Result<()> {
    let warnings = engine.delete(conv).await?;
    warn(&warnings);
    if as_json {
        json(&serde_json::json!({"deleted": conv}))?;
    }
    Ok(())
}

pub(crate) fn info(engine: &Engine, conv: &str, as_json: bool) -> Result<()> {
    let info = engine.info(conv)?;
    if as_json {
        return json(&info);
    }
    render::info(&info);
    Ok(())
}
