//! `kith-relay directory …`: an operator's commands on the directories of
//! a relay's store (`docs/spec/directory-v1.md`). They act on the store
//! directly, beside a running relay, as `admin stats` does.

use crate::{StoreArgs, open_store};
use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kith_relay::directory;
use kith_relay::store::Store;
use kith_relay::time::now_ms;
use kith_relay_client::utc_minute as date;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum DirectoryCommand {
    /// Create a directory with a new root key.
    Create {
        /// Its name: lower-case letters, digits and '-'.
        name: String,
        /// Only admitted members search and publish (default: anyone).
        #[arg(long)]
        members_only: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Admit one person: prints a one-time enrolment link to give them.
    Admit {
        name: String,
        /// What their attestation says, e.g. "current student".
        #[arg(long)]
        statement: String,
        /// Last day of validity, YYYY-MM-DD (UTC, to the end of that day).
        #[arg(long, conflicts_with = "valid_for")]
        until: Option<String>,
        /// Validity from now instead: 90s, 30m, 12h or 365d.
        #[arg(long)]
        valid_for: Option<String>,
        /// The relay's address as people reach it [default: the
        /// configuration's directory.public_url, else http://<listen>].
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove an admission (by the number `list` shows): its entry goes,
    /// its searches are refused, its key joins the revocation list.
    Remove {
        name: String,
        id: u64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List directories, or one directory's admissions.
    List {
        name: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add a new signing key; attestations signed before stay valid.
    Rotate {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) async fn run(command: DirectoryCommand) -> Result<()> {
    let now = now_ms();
    match command {
        DirectoryCommand::Create {
            name,
            members_only,
            store,
        } => {
            let (store, _) = open_store(store).await?;
            let made = directory::create(&*store, &name, members_only, now).await;
            store.close().await;
            let info = made?;
            println!(
                "created the {} directory {} (root key {})",
                if members_only {
                    "members-only"
                } else {
                    "public"
                },
                info.name,
                hex(&info.root)
            );
            println!("people compare its name and the first 16 hex digits of the root key");
        }
        DirectoryCommand::Admit {
            name,
            statement,
            until,
            valid_for,
            url,
            store,
        } => {
            let valid_until = match (until, valid_for) {
                (Some(date), None) => end_of_day_ms(&date)?,
                (None, Some(d)) => now.saturating_add(duration_ms(&d)?),
                _ => anyhow::bail!("give --until YYYY-MM-DD or --valid-for DURATION"),
            };
            let (store, config) = open_store(store).await?;
            let admitted = directory::admit(&*store, &name, &statement, valid_until, now).await;
            store.close().await;
            let (id, secret) = admitted?;
            let base = url
                .or_else(|| Some(config.directory.public_url.clone()).filter(|u| !u.is_empty()))
                .unwrap_or_else(|| format!("http://{}", config.listen));
            println!(
                "{}/d/{name}#{}",
                base.trim_end_matches('/'),
                URL_SAFE_NO_PAD.encode(&secret[..])
            );
            eprintln!(
                "admission {id}: \u{201c}{statement}\u{201d}, valid until {} UTC; the link works once",
                date(valid_until)
            );
        }
        DirectoryCommand::Remove { name, id, store } => {
            let (store, _) = open_store(store).await?;
            let removed = store.dir_remove(&name, id, now).await;
            store.close().await;
            anyhow::ensure!(
                removed?,
                "the directory {name} has no admission {id} to remove"
            );
            println!("removed admission {id} from {name}");
        }
        DirectoryCommand::List { name, store } => {
            let (store, _) = open_store(store).await?;
            let listed = list(&*store, name.as_deref()).await;
            store.close().await;
            listed?;
        }
        DirectoryCommand::Rotate { name, store } => {
            let (store, _) = open_store(store).await?;
            let rotated = directory::rotate(&*store, &name, now).await;
            store.close().await;
            let key = rotated?;
            println!(
                "new signing key {} for {name}, valid until {} UTC",
                hex(&key.key),
                date(key.valid_until_ms)
            );
        }
    }
    Ok(())
}

async fn list(store: &dyn Store, name: Option<&str>) -> Result<()> {
    let Some(name) = name else {
        for d in store.dir_list().await? {
            println!(
                "{}  {}  {} members, {} entries",
                d.name,
                if d.members_only {
                    "members-only"
                } else {
                    "public"
                },
                d.members,
                d.entries
            );
        }
        return Ok(());
    };
    anyhow::ensure!(
        store.dir_load(name, now_ms()).await?.is_some(),
        "there is no directory named {name}"
    );
    for m in store.dir_members(name).await? {
        let state = match (m.enrolled, m.removed) {
            (_, true) => "removed",
            (true, false) => "enrolled",
            (false, false) => "link not yet used",
        };
        // An entry's name is the member's own text: shown as data.
        let entry = m
            .entry_name
            .map(|n| format!(", listed as {:?}", n))
            .unwrap_or_default();
        println!(
            "{}  \u{201c}{}\u{201d} until {} UTC  {state}{entry}",
            m.id,
            m.admission.statement,
            date(m.admission.valid_until_ms)
        );
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds at the end of `YYYY-MM-DD` (UTC).
fn end_of_day_ms(date: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("{date:?} is not a date of the form YYYY-MM-DD");
    let mut parts = date
        .splitn(3, '-')
        .map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (y, m, d) = match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => (y?, m?, d?),
        _ => return Err(bad()),
    };
    anyhow::ensure!(
        (1..=12).contains(&m) && (1..=31).contains(&d) && y >= 1970,
        bad()
    );
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let end = (days + 1) * 86_400_000 - 1;
    u64::try_from(end).map_err(|_| bad())
}

/// `90s`, `30m`, `12h`, `365d` in milliseconds.
fn duration_ms(text: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("{text:?} is not a duration like 90s, 30m, 12h or 365d");
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    anyhow::ensure!(n > 0, bad());
    Ok(n.saturating_mul(unit_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations() {
        assert_eq!(end_of_day_ms("1970-01-01").ok(), Some(86_399_999));
        assert_eq!(
            date(end_of_day_ms("2027-06-30").unwrap_or(0)),
            "2027-06-30 23:59"
        );
        assert_eq!(
            date(end_of_day_ms("2028-02-29").unwrap_or(0)),
            "2028-02-29 23:59"
        );
        assert!(end_of_day_ms("2027-13-01").is_err());
        assert!(end_of_day_ms("tomorrow").is_err());
        assert_eq!(duration_ms("90s").ok(), Some(90_000));
        assert_eq!(duration_ms("2d").ok(), Some(172_800_000));
        assert!(duration_ms("0s").is_err());
        assert!(duration_ms("5y").is_err());
        assert!(duration_ms("").is_err());
    }
}
