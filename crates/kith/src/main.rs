//! `kith`: the command line of the kith messenger. Every command takes
//! `--home DIR` and `--json`; errors are one line on stderr and exit code 1.
//! Protocol logic lives in kith-core: `cmd/` turns commands into engine
//! calls, `render/` presents what comes back.

mod cli;
mod cmd;
mod remote;
mod render;
mod up;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use kith_core::{Config, CoreError};

use cli::Cli;

/// Files move as 256 KiB chunks, allocated on one thread and freed on
/// another. glibc maps and unmaps blocks that large and keeps an arena per
/// thread, and the page faults cost a fifth of an upload's CPU; served
/// from one heap that keeps up to 16 MiB free, a 200 MiB upload takes 0.8 s
/// instead of 1.2 s at the same peak memory (docs/performance.md, "Files").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists, and a refused value leaves the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() {
    tune_allocator();
    let cli = Cli::parse();
    let as_json = cli.json;
    // The daemon serves many clients; a command is one task.
    let runtime = if matches!(cli.command, cli::Command::Up { .. }) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => fail(&anyhow::anyhow!(e), as_json),
    };
    match runtime.block_on(run(cli)) {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&e, as_json),
    }
}

/// Runs the command here, or through the profile's daemon if one runs;
/// returns the exit code.
async fn run(cli: Cli) -> Result<i32> {
    let home = home(&cli)?;
    let daemon = kith_daemon::client::Connection::open(&home).await;
    if let cli::Command::Up {
        listen,
        ice_servers,
    } = cli.command
    {
        if daemon.is_some() {
            anyhow::bail!("kith is already up for {}", home.display());
        }
        up::up(&home, config()?, listen, ice_servers, cli.json).await?;
        return Ok(0);
    }
    if let Some(daemon) = daemon {
        return remote::forward(daemon, &cli.command, cli.json).await;
    }
    cmd::run(&home, config()?, cli.command, cli.json).await?;
    Ok(0)
}

fn home(cli: &Cli) -> Result<PathBuf> {
    if let Some(h) = &cli.home {
        return Ok(h.clone());
    }
    directories::ProjectDirs::from("im", "kith", "kith")
        .map(|d| d.data_dir().to_path_buf())
        .context("no home directory: pass --home DIR or set KITH_HOME")
}

/// The engine's settings from the environment (the library reads none).
fn config() -> Result<Config> {
    let mut config = Config::default();
    let secs = |var: &str| -> Result<Option<Duration>> {
        match std::env::var(var) {
            Ok(v) => v
                .parse::<u64>()
                .map(|s| Some(Duration::from_secs(s)))
                .map_err(|_| anyhow::anyhow!("{var}={v:?} is not a number of seconds")),
            Err(_) => Ok(None),
        }
    };
    if let Some(d) = secs("KITH_GROUP_UPDATE_SECS")? {
        config.group_update_interval = d;
    }
    if let Some(d) = secs("KITH_ROTATE_SECS")? {
        config.rotate_interval = d;
    }
    if let Some(d) = secs("KITH_DRAIN_SECS")? {
        config.drain_limit = d;
    }
    if let Some(d) = secs("KITH_LOCK_WAIT_SECS")? {
        config.lock_wait = d;
    }
    // What this kith tells its contacts it shows: `plain` stands for a
    // kith from before ContentV1; applications add their media types.
    match std::env::var("KITH_CAPABILITIES").as_deref() {
        Ok("plain") => config.capabilities = kith_content::kind::Capabilities::plain_text(),
        Ok("" | "full") | Err(_) => {}
        Ok(other) => anyhow::bail!("KITH_CAPABILITIES={other:?}: use full or plain"),
    }
    if let Ok(types) = std::env::var("KITH_APP_TYPES") {
        for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            config.capabilities = config.capabilities.clone().with_app_type(t);
        }
    }
    match std::env::var("KITH_SOURCE_ADDRESS").as_deref() {
        Ok("") | Err(_) => {}
        Ok(text) => {
            config.source_address = Some(text.parse().map_err(|_| {
                anyhow::anyhow!("KITH_SOURCE_ADDRESS={text:?} is not an IP address")
            })?);
        }
    }
    config.ca_file = std::env::var_os("KITH_CA_FILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    Ok(config)
}

/// One line, whatever the error.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    kith_relay_client::one_line(e.as_ref())
}

pub(crate) fn code(e: &anyhow::Error) -> &'static str {
    e.chain()
        .find_map(|c| c.downcast_ref::<CoreError>())
        .map_or("error", CoreError::code)
}

fn fail(e: &anyhow::Error, as_json: bool) -> ! {
    render::error(code(e), &one_line(e), as_json);
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_cause_already_said_is_not_said_again() {
        let io = std::io::Error::other("connection refused");
        let e = anyhow::Error::new(io)
            .context("error sending request: connection refused")
            .context(
                "cannot reach the relay at http://x/: error sending request: connection refused",
            );
        assert_eq!(
            one_line(&e),
            "cannot reach the relay at http://x/: error sending request: connection refused"
        );
    }
}
