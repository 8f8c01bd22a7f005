//! Notifications through the system while the window is not focused. The web UI decides
//! what to announce (one per conversation, a summary per conversation after catching up);
//! this shows it.
//!
//! On Linux (and the other freedesktop systems) the notification goes straight to the
//! desktop's notification server over D-Bus (zbus): a conversation's newer
//! notification replaces its older one, and clicking it brings the window to the front
//! and opens that conversation (`chatapp://open`). Elsewhere Tauri's notification plugin
//! shows it (it cannot replace one or report a click there).
//!
//! A message's text stays text: where the freedesktop server reads bodies as markup
//! (`body-markup` or `body-hyperlinks`, as GNOME Shell, KDE and dunst do), `<`, `>` and `&`
//! are escaped, so a sender
//! cannot style, link or hide part of a notification. The plugin's paths (macOS, Windows)
//! take the body as plain text.

use tauri::{AppHandle, Manager, Runtime};

/// The event the window gets when a notification is clicked: its conversation's id.
pub const OPEN: &str = "chatapp://open";

pub fn window_focused<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.get_webview_window("main")
        .and_then(|w| w.is_focused().ok())
        .unwrap_or(false)
}

/// At most this many characters of a message go into a notification.
const BODY_CHARS: usize = 200;

fn clip(body: &str) -> String {
    body.chars().take(BODY_CHARS).collect()
}

/// Shows a notification unless the window is focused.
pub fn show<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str, conversation: Option<i64>) {
    if window_focused(app) {
        return;
    }
    platform::show(app, title, &clip(body), conversation);
}

/// Sets up what `show` needs (called once at start-up).
pub fn install<R: Runtime>(app: &AppHandle<R>) {
    platform::install(app);
}

#[cfg(all(unix, not(target_os = "macos")))]
mod platform {
    use std::sync::Arc;

    use tauri::{AppHandle, Emitter, Manager, Runtime};

    use super::{Desktop, OPEN};

    pub fn install<R: Runtime>(app: &AppHandle<R>) {
        let handle = app.clone();
        app.manage(Desktop::new(Arc::new(move |id| {
            crate::tray::focus_main(&handle);
            let _ = handle.emit(OPEN, id);
        })));
    }

    pub fn show<R: Runtime>(
        app: &AppHandle<R>,
        title: &str,
        body: &str,
        conversation: Option<i64>,
    ) {
        if let Some(desktop) = app.try_state::<Desktop>() {
            desktop.show(title, body, conversation);
        }
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
mod platform {
    use tauri::{AppHandle, Runtime};
    use tauri_plugin_notification::NotificationExt;

    pub fn install<R: Runtime>(_app: &AppHandle<R>) {}

    pub fn show<R: Runtime>(
        app: &AppHandle<R>,
        title: &str,
        body: &str,
        _conversation: Option<i64>,
    ) {
        if let Err(e) = app.notification().builder().title(title).body(body).show() {
            tracing::warn!(error = %e, "notification not shown");
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
pub use freedesktop::{Desktop, OnOpen};

#[cfg(all(unix, not(target_os = "macos")))]
mod freedesktop {
    //! The freedesktop notification protocol over one D-Bus connection, the same for
    //! sending and for listening: some servers (GNOME Shell) send `ActionInvoked` only
    //! to the connection that sent the notification, and listening starts before the
    //! first one is sent, so no click is missed.

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use futures_util::TryStreamExt;
    use tokio::sync::OnceCell;
    use zbus::zvariant::Value;
    use zbus::{Connection, MatchRule, MessageStream};

    const NAME: &str = "org.freedesktop.Notifications";
    const PATH: &str = "/org/freedesktop/Notifications";

    /// What a click on a conversation's notification does.
    pub type OnOpen = Arc<dyn Fn(i64) + Send + Sync>;

    /// The app's notifications: at most one on screen per conversation.
    #[derive(Clone)]
    pub struct Desktop {
        inner: Arc<Inner>,
    }

    struct Inner {
        on_open: OnOpen,
        connection: OnceCell<Connection>,
        /// Whether the server reads the body as markup (`body-markup` capability).
        body_markup: OnceCell<bool>,
        shown: Mutex<Shown>,
    }

    /// The notifications on screen, both ways: the server's id per conversation (a newer
    /// one replaces it) and the conversation per id (what a click opens).
    #[derive(Default)]
    struct Shown {
        by_conversation: HashMap<i64, u32>,
        by_id: HashMap<u32, i64>,
    }

    impl Desktop {
        pub fn new(on_open: OnOpen) -> Self {
            Self {
                inner: Arc::new(Inner {
                    on_open,
                    connection: OnceCell::new(),
                    body_markup: OnceCell::new(),
                    shown: Mutex::default(),
                }),
            }
        }

        /// Shows (or, for a conversation already on screen, replaces) a notification.
        /// Returns at once; the D-Bus calls run on the async runtime.
        pub fn show(&self, title: &str, body: &str, conversation: Option<i64>) {
            let this = self.clone();
            let (title, body) = (title.to_owned(), body.to_owned());
            tauri::async_runtime::spawn(async move {
                if let Err(e) = this.show_now(&title, &body, conversation).await {
                    tracing::warn!(error = %e, "notification not shown");
                }
            });
        }

        /// Like `show`, done when the notification server has it: its id there.
        pub async fn show_now(
            &self,
            title: &str,
            body: &str,
            conversation: Option<i64>,
        ) -> zbus::Result<u32> {
            let connection = self.connection().await?;
            // The summary is plain text by the protocol; the body is markup where the
            // server says so, and a message's text must never become markup there.
            let body = if self.body_markup(&connection).await {
                super::escape_markup(body)
            } else {
                body.to_owned()
            };
            let replaces = conversation
                .and_then(|c| self.shown().by_conversation.get(&c).copied())
                .unwrap_or(0);
            let actions: &[&str] = if conversation.is_some() {
                &["default", "Open"]
            } else {
                &[]
            };
            let hints: HashMap<&str, Value<'_>> =
                HashMap::from([("category", Value::from("im.received"))]);
            let reply = connection
                .call_method(
                    Some(NAME),
                    PATH,
                    Some(NAME),
                    "Notify",
                    &(
                        "ChatApp",
                        replaces,
                        "chatapp-desktop",
                        title,
                        body.as_str(),
                        actions,
                        hints,
                        -1i32,
                    ),
                )
                .await?;
            let id: u32 = reply.body().deserialize()?;
            if let Some(c) = conversation {
                let mut shown = self.shown();
                if let Some(old) = shown.by_conversation.insert(c, id) {
                    shown.by_id.remove(&old);
                }
                shown.by_id.insert(id, c);
            }
            Ok(id)
        }

        /// Asks the server once whether it reads bodies as markup: `body-markup`, or
        /// `body-hyperlinks` / `body-images` (links and images are markup; dunst reads
        /// markup while advertising only `body-hyperlinks`). When it cannot say, the body
        /// is escaped: visible entities are better than text that turns into markup.
        async fn body_markup(&self, connection: &Connection) -> bool {
            *self
                .inner
                .body_markup
                .get_or_init(|| async {
                    let caps = connection
                        .call_method(Some(NAME), PATH, Some(NAME), "GetCapabilities", &())
                        .await
                        .and_then(|reply| reply.body().deserialize::<Vec<String>>());
                    match caps {
                        Ok(caps) => caps.iter().any(|c| {
                            matches!(
                                c.as_str(),
                                "body-markup" | "body-hyperlinks" | "body-images"
                            )
                        }),
                        Err(e) => {
                            tracing::debug!(error = %e, "notification capabilities unknown");
                            true
                        }
                    }
                })
                .await
        }

        /// How many conversations have a notification on screen (as far as this app knows).
        pub fn on_screen(&self) -> usize {
            self.shown().by_conversation.len()
        }

        fn shown(&self) -> std::sync::MutexGuard<'_, Shown> {
            self.inner.shown.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// The session bus connection, listening for clicks and closes from the first use.
        async fn connection(&self) -> zbus::Result<Connection> {
            self.inner
                .connection
                .get_or_try_init(|| async {
                    let connection = Connection::session().await?;
                    let rule = MatchRule::builder()
                        .msg_type(zbus::message::Type::Signal)
                        .interface(NAME)?
                        .path(PATH)?
                        .build();
                    let stream = MessageStream::for_match_rule(rule, &connection, None).await?;
                    let this = self.clone();
                    tauri::async_runtime::spawn(async move { this.listen(stream).await });
                    Ok(connection)
                })
                .await
                .cloned()
        }

        async fn listen(self, mut stream: MessageStream) {
            loop {
                let msg = match stream.try_next().await {
                    Ok(Some(msg)) => msg,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification signals ended");
                        return;
                    }
                };
                let header = msg.header();
                let Some(member) = header.member() else {
                    continue;
                };
                let body = msg.body();
                let (id, clicked) = match member.as_str() {
                    "ActionInvoked" => match body.deserialize::<(u32, String)>() {
                        Ok((id, action)) => (id, action == "default"),
                        Err(_) => continue,
                    },
                    "NotificationClosed" => match body.deserialize::<(u32, u32)>() {
                        Ok((id, _reason)) => (id, false),
                        Err(_) => continue,
                    },
                    _ => continue,
                };
                // Clicked or closed: no longer on screen.
                let conversation = {
                    let mut shown = self.shown();
                    let c = shown.by_id.remove(&id);
                    if let Some(c) = c {
                        shown.by_conversation.remove(&c);
                    }
                    c
                };
                if clicked && let Some(c) = conversation {
                    // Done with: some servers keep a clicked notification on screen.
                    if let Some(connection) = self.inner.connection.get() {
                        let closed = connection
                            .call_method(Some(NAME), PATH, Some(NAME), "CloseNotification", &id)
                            .await;
                        if let Err(e) = closed {
                            tracing::debug!(error = %e, "clicked notification not closed");
                        }
                    }
                    (self.inner.on_open)(c);
                }
            }
        }
    }
}

/// Text as the freedesktop notification markup (a small subset of XML) shows it as it is:
/// `<`, `>` and `&` become entities, so a message cannot style, link or hide itself.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clip, escape_markup};

    #[test]
    fn markup_in_a_message_is_escaped() {
        assert_eq!(
            escape_markup("<b>ALERT</b> <a href=\"x\">x</a> if a < b && c > d"),
            "&lt;b&gt;ALERT&lt;/b&gt; &lt;a href=\"x\"&gt;x&lt;/a&gt; if a &lt; b &amp;&amp; c &gt; d"
        );
        assert_eq!(escape_markup("&amp;"), "&amp;amp;");
        assert_eq!(escape_markup("plain"), "plain");
    }

    #[test]
    fn long_messages_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(500);
        assert_eq!(clip(&long).chars().count(), 200);
        assert_eq!(clip("short"), "short");
    }
}
