//! Notifications against a real notification server: dunst on a private D-Bus session
//! bus, drawing on Xvfb. Through the app's own code: a conversation's newer notification
//! replaces its older one, clicking one ("default" action, as a click does) opens its
//! conversation, closing one does not.

#![cfg(all(unix, not(target_os = "macos")))]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use chatapp_desktop::notify::Desktop;
use serde_json::Value;
use support::{private_dir, require, rerun_self, session_bus, wait_for, xvfb};

fn dunstctl(args: &[&str]) -> String {
    let out = Command::new("dunstctl")
        .args(args)
        .output()
        .expect("dunstctl");
    assert!(out.status.success(), "dunstctl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn displayed() -> usize {
    dunstctl(&["count", "displayed"]).parse().expect("a count")
}

/// Polls `check` until it holds (the server and the app's listener work on their own).
fn eventually(what: &str, check: impl FnMut() -> bool) {
    support::eventually(Duration::from_secs(20), what, check);
}

/// (appname, summary, body) of the notifications dunst has closed.
fn history() -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(&dunstctl(&["history"])).expect("history json");
    let text = |n: &Value, k: &str| n[k]["data"].as_str().unwrap_or_default().to_owned();
    v["data"][0]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| (text(n, "appname"), text(n, "summary"), text(n, "body")))
        .collect()
}

/// Runs inside the parent's bus and dunst.
#[test]
#[ignore = "run by the notification test inside its D-Bus session"]
fn notify_child() {
    if std::env::var_os("CHATAPP_TEST_NOTIFY").is_none() {
        return;
    }
    let (tx, opened) = mpsc::channel::<i64>();
    let tx = std::sync::Mutex::new(tx);
    let desktop = Desktop::new(Arc::new(move |id| {
        let _ = tx.lock().map(|t| t.send(id));
    }));
    tauri::async_runtime::block_on(async {
        let first = desktop.show_now("Ben", "hi", Some(7)).await.expect("shown");
        assert_eq!(displayed(), 1);
        // A newer one for the same conversation replaces it.
        let second = desktop
            .show_now("Ben", "2 new messages · are you there?", Some(7))
            .await
            .expect("shown");
        assert_eq!(second, first, "the same notification, replaced");
        assert_eq!(displayed(), 1);
        assert_eq!(desktop.on_screen(), 1);

        // Clicked: the conversation opens (and the notification is gone).
        dunstctl(&["action", "0"]);
        let id = opened
            .recv_timeout(Duration::from_secs(20))
            .expect("the click reached the app");
        assert_eq!(id, 7);
        eventually("the clicked notification leaving", || displayed() == 0);
        eventually("the app forgetting it", || desktop.on_screen() == 0);
        let seen = history();
        assert!(
            seen.contains(&(
                "ChatApp".into(),
                "Ben".into(),
                "2 new messages · are you there?".into()
            )),
            "{seen:?}"
        );
        assert!(
            !seen.iter().any(|(_, _, body)| body == "hi"),
            "the replaced one was never a separate notification: {seen:?}"
        );

        // Another conversation, closed without a click: nothing opens.
        let third = desktop
            .show_now("Cat", "lunch?", Some(9))
            .await
            .expect("shown");
        assert_ne!(third, first);
        assert_eq!(displayed(), 1);
        dunstctl(&["close"]);
        eventually("the app noticing the close", || desktop.on_screen() == 0);
        assert!(opened.try_recv().is_err(), "closing opened a conversation");

        // A message's text is text: dunst reads bodies as markup, so it arrives escaped
        // and is shown as typed, neither styled nor mangled.
        let typed = "<b>SECURITY ALERT from IT</b> <u>call now</u> if a < b && c > d";
        desktop
            .show_now("Mallory", typed, Some(11))
            .await
            .expect("shown");
        dunstctl(&["close"]);
        eventually("the markup notification in the history", || {
            history().iter().any(|(_, summary, _)| summary == "Mallory")
        });
        let v: Value = serde_json::from_str(&dunstctl(&["history"])).expect("history json");
        let n = v["data"][0]
            .as_array()
            .and_then(|all| all.iter().find(|n| n["summary"]["data"] == "Mallory"))
            .cloned()
            .expect("the notification");
        assert_eq!(
            n["body"]["data"],
            "&lt;b&gt;SECURITY ALERT from IT&lt;/b&gt; &lt;u&gt;call now&lt;/u&gt; if a &lt; b &amp;&amp; c &gt; d",
            "the body dunst received: {n}"
        );
        // What dunst draws (its markup, after its format): the tags as text, not as tags.
        let shown = n["message"]["data"].as_str().unwrap_or_default();
        assert!(
            shown.contains("&lt;b&gt;SECURITY ALERT from IT&lt;/b&gt;")
                && shown.contains("if a &lt; b &amp;&amp; c &gt; d")
                && !shown.contains("<u>"),
            "dunst shows the text as typed: {shown:?}"
        );
    });
}

#[test]
fn notifications_replace_per_conversation_and_a_click_opens_it() {
    require("Xvfb", "xvfb");
    require("dbus-daemon", "dbus");
    require("dbus-send", "dbus");
    let (_x, display) = xvfb();
    let dir = private_dir();

    // A private session bus (that starts nothing by itself).
    let (mut bus, address) = session_bus(dir.path());
    let _dunst = support::dunst(&display, &address, dir.path());

    let mut child = rerun_self("notify_child");
    child
        .env("CHATAPP_TEST_NOTIFY", "1")
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("DISPLAY", &display)
        .stdin(Stdio::null());
    let mut child = child.spawn().expect("child");
    let status = wait_for(&mut child, Duration::from_secs(90), "the notification test");
    assert!(status.success(), "the notification test failed: {status}");
    bus.stop();
}
