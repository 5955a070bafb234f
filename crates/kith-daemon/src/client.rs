//! Reaching a running daemon over its Unix socket, as the `kith` command
//! does: one request, an answer read as it comes (line by line).

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::error::ApiError;

/// A connection to the daemon of a profile.
#[derive(Debug)]
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// An answer being read.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    body: hyper::body::Incoming,
    pending: Vec<u8>,
}

impl Connection {
    /// Connects to the daemon of the profile in `home`; `None` if none runs
    /// (no socket, or one left by a daemon that is gone).
    #[cfg(unix)]
    pub async fn open(home: &Path) -> Option<Self> {
        let stream = tokio::net::UnixStream::connect(crate::socket_path(home))
            .await
            .ok()?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Some(Self { sender })
    }

    #[cfg(not(unix))]
    pub async fn open(_home: &Path) -> Option<Self> {
        None
    }

    /// Sends `body` (JSON) to `path` with `method`.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Answer, ApiError> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ApiError::Local(e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| ApiError::Local(format!("the daemon did not answer: {e}")))?;
        Ok(Answer {
            status: response.status().as_u16(),
            body: response.into_body(),
            pending: Vec::new(),
        })
    }
}

impl Answer {
    /// The next line of the answer (without its newline), `None` at its end.
    pub async fn line(&mut self) -> Result<Option<Vec<u8>>, ApiError> {
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=at).collect();
                line.pop();
                return Ok(Some(line));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(ApiError::Local(format!(
                        "the daemon's answer broke off: {e}"
                    )));
                }
                None if self.pending.is_empty() => return Ok(None),
                None => return Ok(Some(std::mem::take(&mut self.pending))),
            }
        }
    }

    /// The whole answer.
    pub async fn bytes(mut self) -> Result<Vec<u8>, ApiError> {
        let mut all = std::mem::take(&mut self.pending);
        while let Some(frame) = self.body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::Local(format!("the daemon's answer broke off: {e}")))?;
            if let Ok(data) = frame.into_data() {
                all.extend_from_slice(&data);
            }
        }
        Ok(all)
    }
}
