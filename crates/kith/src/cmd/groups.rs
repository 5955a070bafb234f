//! `kith group …`.

use anyhow::Result;
use kith_core::Engine;

use crate::cli::{AdminAction, GroupCommand};
use crate::render::{self, json, out, text::line};

pub(crate) async fn run(engine: &mut Engine, command: GroupCommand, as_json: bool) -> Result<()> {
    match command {
        GroupCommand::Create {
            name,
            relay,
            persona,
        } => {
            let view = engine
                .group_create_as(&name, relay.as_deref(), persona.as_deref())
                .await?;
            if as_json {
                return json(&view);
            }
            render::conversation(&view);
        }
        GroupCommand::Invite { group } => {
            let invite = engine.group_invite(&group).await?;
            if as_json {
                return json(&invite);
            }
            render::invite(&invite);
        }
        GroupCommand::Add { group, conv } => {
            let change = engine.group_add(&group, &conv).await?;
            let what = format!("add {conv} to {}", change.group.name);
            render::change(&change, &what, as_json)?;
        }
        GroupCommand::Remove { group, member } => {
            let change = engine.group_remove(&group, &member).await?;
            let what = format!("remove {member} from {}", change.group.name);
            render::change(&change, &what, as_json)?;
        }
        GroupCommand::Leave { group } => {
            let view = engine.group_leave(&group).await?;
            if as_json {
                return json(&view);
            }
            out(&format!("you left {}", line(&view.name)));
        }
        GroupCommand::Members { group } => {
            let members = engine.group_members(&group)?;
            if as_json {
                return json(&members);
            }
            members.iter().for_each(render::member);
        }
        GroupCommand::Admins {
            group,
            action,
            member,
        } => match (action, member) {
            (None, _) => {
                let admins: Vec<_> = engine
                    .group_members(&group)?
                    .into_iter()
                    .filter(|m| m.admin)
                    .collect();
                if as_json {
                    return json(&admins);
                }
                admins.iter().for_each(render::member);
            }
            (Some(_), None) => {
                anyhow::bail!("name the member: kith group admins GROUP add|remove MEMBER")
            }
            (Some(action), Some(member)) => {
                let admin = matches!(action, AdminAction::Add);
                let change = engine.group_set_admin(&group, &member, admin).await?;
                let what = if admin {
                    "make admin"
                } else {
                    "no longer admin"
                };
                render::change(&change, &format!("{what}: {member}"), as_json)?;
            }
        },
    }
    Ok(())
}
