//! Introductions, contact addresses and requests, blocking and moving.

use anyhow::Result;
use kith_core::Engine;

use crate::cli::{AddressCommand, DirectoryCommand, IntroAction, PersonaCommand};
use crate::render::{self, json, out, text::line, warn};

pub(crate) async fn introduce(
    engine: &mut Engine,
    a: &str,
    b: &str,
    note: &str,
    as_json: bool,
) -> Result<()> {
    let view = engine.introduce(a, b, note).await?;
    if as_json {
        return json(&view);
    }
    render::introduction(&view);
    Ok(())
}

pub(crate) async fn introductions(
    engine: &mut Engine,
    action: Option<IntroAction>,
    id: Option<&str>,
    name: Option<&str>,
    as_json: bool,
) -> Result<()> {
    match (action, id) {
        (None, _) => {
            let list = engine.introductions()?;
            if as_json {
                return json(&list);
            }
            list.iter().for_each(render::introduction);
        }
        (Some(_), None) => {
            anyhow::bail!("name the introduction: kith introductions accept|decline ID")
        }
        (Some(action), Some(id)) => {
            let accept = matches!(action, IntroAction::Accept);
            let view = engine.answer_introduction(id, accept, name).await?;
            if as_json {
                return json(&view);
            }
            render::introduction(&view);
        }
    }
    Ok(())
}

pub(crate) async fn address(
    engine: &mut Engine,
    command: Option<AddressCommand>,
    as_json: bool,
) -> Result<()> {
    match command.unwrap_or(AddressCommand::List) {
        AddressCommand::Create {
            name,
            relay,
            display_name,
            persona,
        } => {
            let view = engine
                .address_create(
                    name.as_deref(),
                    relay.as_deref(),
                    display_name.as_deref(),
                    persona.as_deref(),
                )
                .await?;
            if as_json {
                return json(&view);
            }
            render::address(&view, true);
        }
        AddressCommand::List => {
            let list = engine.addresses()?;
            if as_json {
                return json(&list);
            }
            if list.is_empty() {
                out("no contact addresses (`kith address create` makes one)");
            }
            list.iter().for_each(|a| render::address(a, false));
        }
        AddressCommand::Show { address } => {
            let id = engine.resolve_address(&address)?;
            let view = engine
                .addresses()?
                .into_iter()
                .find(|a| a.id == id)
                .ok_or_else(|| anyhow::anyhow!("no contact address matches {address:?}"))?;
            if as_json {
                return json(&view);
            }
            render::address(&view, true);
        }
        AddressCommand::Delete { address } => {
            engine.address_delete(&address).await?;
            if as_json {
                return json(&serde_json::json!({"deleted": address}));
            }
            out(&format!(
                "deleted {}: its relay refuses further requests",
                line(&address)
            ));
        }
    }
    Ok(())
}

pub(crate) fn persona(
    engine: &mut Engine,
    command: Option<PersonaCommand>,
    as_json: bool,
) -> Result<()> {
    match command.unwrap_or(PersonaCommand::List) {
        PersonaCommand::Create { name, display_name } => {
            let view = engine.persona_create(&name, display_name.as_deref())?;
            if as_json {
                return json(&view);
            }
            render::persona(&view);
        }
        PersonaCommand::List => {
            let list = engine.personas()?;
            if as_json {
                return json(&list);
            }
            if list.is_empty() {
                out(
                    "no personas: every relationship has its own identity (`kith persona create NAME` makes one to share)",
                );
            }
            list.iter().for_each(render::persona);
        }
        PersonaCommand::Delete { name } => {
            engine.persona_delete(&name)?;
            if as_json {
                return json(&serde_json::json!({"deleted": name}));
            }
            out(&format!(
                "forgot the persona {}: its conversations keep its identity",
                line(&name)
            ));
        }
    }
    Ok(())
}

pub(crate) async fn directory(
    engine: &mut Engine,
    command: DirectoryCommand,
    as_json: bool,
) -> Result<()> {
    match command {
        DirectoryCommand::Join { link, persona } => {
            let d = engine.directory_join(&link, persona.as_deref()).await?;
            if as_json {
                return json(&d);
            }
            out(&format!("joined {}", line(&d.name)));
            render::directory(&d);
        }
        DirectoryCommand::List => {
            let list = engine.directories()?;
            if as_json {
                return json(&list);
            }
            if list.is_empty() {
                out("no directories joined (kith directory join LINK)");
            }
            list.iter().for_each(render::directory);
        }
        DirectoryCommand::Search { directory, query } => {
            let found = engine
                .directory_search(&directory, &query.join(" "))
                .await?;
            if as_json {
                return json(&found);
            }
            if found.is_empty() {
                out("nobody found");
            }
            for (i, e) in found.iter().enumerate() {
                render::entry(i + 1, e);
            }
            if !found.is_empty() {
                // As the persona the directory knows, so that the contact
                // sees the person the directory attests.
                let persona = engine
                    .directories()?
                    .into_iter()
                    .find(|d| d.name == directory || d.link == directory)
                    .map(|d| d.persona);
                out(&match persona {
                    Some(p) => format!(
                        "to ask one for a conversation: kith accept ADDRESS --persona {} [--note TEXT]",
                        line(&p)
                    ),
                    None => {
                        "to ask one for a conversation: kith accept ADDRESS [--note TEXT]".into()
                    }
                });
            }
        }
        DirectoryCommand::Publish {
            directory,
            display_name,
            text,
        } => {
            let d = engine
                .directory_publish(&directory, display_name.as_deref(), &text)
                .await?;
            if as_json {
                return json(&d);
            }
            out(&format!("listed in {}", line(&d.name)));
            render::directory(&d);
        }
        DirectoryCommand::Unpublish { directory } => {
            let d = engine.directory_unpublish(&directory).await?;
            if as_json {
                return json(&d);
            }
            out(&format!(
                "no longer listed in {}; its contact address is deleted",
                line(&d.name)
            ));
        }
        DirectoryCommand::Show { directory, conv } => {
            let warnings = engine.directory_show(&directory, &conv).await?;
            warn(&warnings);
            if as_json {
                return json(&serde_json::json!({"shown": directory, "in": conv}));
            }
            out(&format!(
                "{} now sees your attestation from {}",
                line(&conv),
                line(&directory)
            ));
        }
        DirectoryCommand::Leave { directory } => {
            engine.directory_leave(&directory).await?;
            if as_json {
                return json(&serde_json::json!({"left": directory}));
            }
            out(&format!("left {}", line(&directory)));
        }
    }
    Ok(())
}

pub(crate) async fn link(engine: &mut Engine, conv: &str, with: &str, as_json: bool) -> Result<()> {
    let warnings = engine.link(conv, with).await?;
    warn(&warnings);
    if as_json {
        return json(&serde_json::json!({"linked": conv, "with": with}));
    }
    out(&format!(
        "{} now sees that you are also the person of {}",
        line(conv),
        line(with)
    ));
    Ok(())
}

pub(crate) async fn requests(
    engine: &mut Engine,
    action: Option<IntroAction>,
    id: Option<&str>,
    name: Option<&str>,
    as_json: bool,
) -> Result<()> {
    match (action, id) {
        (None, _) => {
            let list = engine.requests()?;
            if as_json {
                return json(&list);
            }
            if list.is_empty() {
                out("no contact requests waiting");
            }
            list.iter().for_each(render::request);
        }
        (Some(_), None) => anyhow::bail!("name the request: kith requests accept|decline ID"),
        (Some(IntroAction::Accept), Some(id)) => {
            let accepted = engine.request_accept(id, name).await?;
            warn(&accepted.warnings);
            if as_json {
                return json(&accepted.conversation);
            }
            out(&format!(
                "connected with {}",
                line(&accepted.conversation.name)
            ));
            render::conversation(&accepted.conversation);
        }
        (Some(IntroAction::Decline), Some(id)) => {
            engine.request_decline(id)?;
            if as_json {
                return json(&serde_json::json!({"declined": id}));
            }
            out(&format!("declined request {}", line(id)));
        }
    }
    Ok(())
}

pub(crate) fn ignore_introductions(
    engine: &mut Engine,
    conv: &str,
    ignore: bool,
    as_json: bool,
) -> Result<()> {
    engine.ignore_introductions(conv, ignore)?;
    if as_json {
        json(&serde_json::json!({"conversation": conv, "ignore_introductions": ignore}))?;
    }
    Ok(())
}

pub(crate) async fn block(engine: &mut Engine, conv: &str, as_json: bool) -> Result<()> {
    let warnings = engine.block(conv).await?;
    warn(&warnings);
    if as_json {
        return json(&serde_json::json!({"blocked": conv}));
    }
    out(&format!("blocked {}", line(conv)));
    Ok(())
}

pub(crate) async fn unblock(engine: &mut Engine, conv: &str, as_json: bool) -> Result<()> {
    let warnings = engine.unblock(conv).await?;
    warn(&warnings);
    if as_json {
        return json(&serde_json::json!({"unblocked": conv}));
    }
    out(&format!("unblocked {}", line(conv)));
    Ok(())
}

pub(crate) async fn move_to(engine: &mut Engine, to: &str, as_json: bool) -> Result<()> {
    let report = engine.move_to(to).await?;
    warn(&report.warnings);
    if as_json {
        json(&report)?;
    } else {
        out(&format!(
            "{} conversation(s) now on {}; contacts follow at their next sync",
            report.moved.len(),
            line(to)
        ));
    }
    if !report.errors.is_empty() {
        anyhow::bail!("not moved: {}", report.errors.join("; "));
    }
    Ok(())
}
