//! `kith up`: the daemon (kith-daemon) for this profile, with the CLI's
//! own route on its Unix socket, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;
use kith_core::Config;
use kith_daemon::{Daemon, Options};

use crate::render;

pub(crate) async fn up(
    home: &Path,
    config: Config,
    listen: SocketAddr,
    ice_servers: Vec<String>,
    json: bool,
) -> Result<()> {
    for server in &ice_servers {
        if !["stun:", "stuns:", "turn:", "turns:"]
            .iter()
            .any(|s| server.starts_with(s))
        {
            anyhow::bail!("{server:?} is not a STUN or TURN server (stun:HOST:PORT, turn:…)");
        }
    }
    let daemon = Daemon::start(Options {
        home: home.to_path_buf(),
        config,
        listen,
        ice_servers,
        unix_routes: Box::new(crate::remote::routes),
        say: Box::new(|s| render::err(&format!("kith: {}", render::text::line(s)))),
    })
    .await?;
    if json {
        render::json(&serde_json::json!({
            "event": "up",
            "url": daemon.url,
            "login_url": daemon.login_url,
            "socket": kith_daemon::socket_path(home),
        }))?;
    } else {
        render::out(&format!(
            "kith is up at {} — open {} in a browser",
            daemon.url, daemon.login_url
        ));
    }
    stopped().await;
    render::err("kith: stopping");
    daemon.stop().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (systemd stopping the unit).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
