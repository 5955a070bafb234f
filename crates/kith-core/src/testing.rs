//! Helpers shared by the engine's unit tests and its integration tests
//! (`tests/common` includes this file by path, which is why it names the
//! crate `kith_core`). Test code only.

#![allow(clippy::unwrap_used, unreachable_pub)]

use kith_core::Engine;

/// `a` invites `b`; both synced. Returns the conversation ids (on a, on b).
pub async fn meet(a: &mut Engine, b: &mut Engine) -> (String, String) {
    let invite = a.invite(None, None).await.unwrap();
    let on_b = b.accept(&invite.link, None).await.unwrap().conversation.id;
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    a.sync().await.unwrap();
    (invite.conversation, on_b)
}
